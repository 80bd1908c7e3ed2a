package apps

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Deploy job statuses. A job is queued, then running, then one of the
// final four; a queued job a newer one of the same app replaces is
// coalesced without running.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
	JobCoalesced = "coalesced"
)

// DeployJob is one queued deploy of an app from its source repository,
// typically asked for by a webhook.
type DeployJob struct {
	ID       int64
	App      string
	Trigger  string // github, gitlab, gitea, sync
	Ref      string // the branch pushed
	Rev      string // the revision the event announced
	Delivery string // the provider's delivery ID, if any
	User     string // who asked: the pusher named by the event
	Status   string
	Release  int    // the release the deploy made, 0 if none
	Detail   string // why it failed, or what happened instead of a deploy

	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// JobStore keeps the deploy queue, so it survives a restart.
type JobStore interface {
	// EnqueueJob stores j as queued and marks the app's other queued jobs
	// coalesced into it, in one transaction.
	EnqueueJob(ctx context.Context, j DeployJob) (DeployJob, error)
	// NextJob is the app's oldest queued job; ok is false if none.
	NextJob(ctx context.Context, app string) (j DeployJob, ok bool, err error)
	// StartJob moves a queued job to running; ok is false if it was no
	// longer queued (cancelled or coalesced meanwhile).
	StartJob(ctx context.Context, id int64, at time.Time) (ok bool, err error)
	// FinishJob records a job's final status, release and detail.
	FinishJob(ctx context.Context, id int64, status string, release int, detail string, at time.Time) error
	// CancelQueuedJob cancels a queued job; ok is false if it was not queued.
	CancelQueuedJob(ctx context.Context, id int64, detail string, at time.Time) (ok bool, err error)
	Job(ctx context.Context, id int64) (DeployJob, error)
	// Jobs lists the most recent jobs first, of one app or of all ("").
	Jobs(ctx context.Context, app string, limit int) ([]DeployJob, error)
	// RequeueRunning puts jobs left running by a stopped daemon back in the
	// queue and returns the apps having queued jobs.
	RequeueRunning(ctx context.Context) ([]string, error)
}

// JobRunner runs one job: it syncs and deploys, reporting the release it
// made through onRelease; detail says what happened when nothing was
// deployed (e.g. the revision was already live).
type JobRunner func(ctx context.Context, j DeployJob, onRelease func(int), out io.Writer) (detail string, err error)

// QueueConfig configures a Queue.
type QueueConfig struct {
	// Settle is how long a job waits after it is queued for newer pushes to
	// coalesce with it; default 2 s.
	Settle time.Duration
	// Timeout returns the time limit of one job of app; default 30 min.
	Timeout func(ctx context.Context, app string) time.Duration
	// Out receives the output of the jobs' deploys (the daemon's log).
	Out func(j DeployJob) io.Writer
}

// DefaultJobTimeout bounds a queued deploy when no timeout is set.
const DefaultJobTimeout = 30 * time.Minute

// Queue runs deploy jobs: one at a time per app, apps in parallel, the
// newest of a burst only, each within a timeout. Jobs live in a JobStore:
// after a restart, Start picks up what was queued or cut off.
type Queue struct {
	store JobStore
	run   JobRunner
	cfg   QueueConfig
	log   Logger

	mu      sync.Mutex
	ctx     context.Context // set by Start: the daemon's lifetime
	workers map[string]*worker
	wg      sync.WaitGroup
}

// worker is the goroutine running an app's jobs.
type worker struct {
	wake         chan struct{}
	running      int64              // the job running now, 0 if none
	cancel       context.CancelFunc // cancels the running job
	cancelDetail string             // who cancelled it
}

// NewQueue returns a queue running jobs with run.
func NewQueue(store JobStore, run JobRunner, log Logger, cfg QueueConfig) *Queue {
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.Timeout == nil {
		cfg.Timeout = func(context.Context, string) time.Duration { return DefaultJobTimeout }
	}
	if cfg.Out == nil {
		cfg.Out = func(DeployJob) io.Writer { return io.Discard }
	}
	return &Queue{store: store, run: run, cfg: cfg, log: log, workers: map[string]*worker{}}
}

// Start runs the queue until ctx ends: jobs a stopped daemon left running
// are queued again, and every app with queued jobs gets its worker.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	q.ctx = ctx
	q.mu.Unlock()
	pending, err := q.store.RequeueRunning(ctx)
	if err != nil {
		return fmt.Errorf("restore deploy queue: %w", err)
	}
	for _, app := range pending {
		q.kick(app)
	}
	return nil
}

// Wait blocks until the workers have stopped (after Start's ctx ends).
func (q *Queue) Wait() { q.wg.Wait() }

// Enqueue queues j for its app, coalescing it with the app's queued jobs.
func (q *Queue) Enqueue(ctx context.Context, j DeployJob) (DeployJob, error) {
	if err := ValidateAppName(j.App); err != nil {
		return DeployJob{}, err
	}
	j.Status = JobQueued
	j.CreatedAt = time.Now().UTC()
	j, err := q.store.EnqueueJob(ctx, j)
	if err != nil {
		return DeployJob{}, fmt.Errorf("queue deploy of %s: %w", j.App, err)
	}
	q.kick(j.App)
	return j, nil
}

// Jobs lists recent jobs, newest first, of one app or all ("").
func (q *Queue) Jobs(ctx context.Context, app string, limit int) ([]DeployJob, error) {
	return q.store.Jobs(ctx, app, limit)
}

// Cancel stops job id: a queued job never runs, a running one has its
// deploy cancelled (the release serving before keeps serving).
func (q *Queue) Cancel(ctx context.Context, id int64, user string) (DeployJob, error) {
	j, err := q.store.Job(ctx, id)
	if err != nil {
		return DeployJob{}, err
	}
	detail := "cancelled by " + user
	switch j.Status {
	case JobQueued:
		ok, err := q.store.CancelQueuedJob(ctx, id, detail, time.Now().UTC())
		if err != nil {
			return j, err
		}
		if ok {
			j.Status, j.Detail = JobCancelled, detail
			return j, nil
		}
		// It started meanwhile: cancel it running.
	case JobRunning:
	default:
		return j, Errorf(ErrJobFinished, "Deploy #%d of %s already %s", id, j.App, j.Status)
	}
	q.mu.Lock()
	w := q.workers[j.App]
	found := w != nil && w.running == id
	if found {
		w.cancelDetail = detail
		w.cancel()
	}
	q.mu.Unlock()
	if !found {
		return j, Errorf(ErrJobFinished, "Deploy #%d of %s is no longer running", id, j.App)
	}
	j.Status, j.Detail = JobCancelled, detail
	return j, nil
}

// kick makes sure app has a worker and wakes it.
func (q *Queue) kick(app string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ctx == nil || q.ctx.Err() != nil {
		return // not started, or stopping: Start picks the job up later
	}
	if w, ok := q.workers[app]; ok {
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return
	}
	w := &worker{wake: make(chan struct{}, 1)}
	q.workers[app] = w
	q.wg.Add(1)
	go q.work(q.ctx, app, w)
}

// work runs app's queued jobs until there are none.
func (q *Queue) work(ctx context.Context, app string, w *worker) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		j, ok, err := q.store.NextJob(ctx, app)
		if err != nil || !ok || ctx.Err() != nil {
			delete(q.workers, app)
			q.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				q.log.Printf("deploy queue of %s: %v", app, err)
			}
			return
		}
		q.mu.Unlock()
		// Let a burst of pushes settle: a newer job coalesces this one.
		if wait := q.cfg.Settle - time.Since(j.CreatedAt); wait > 0 {
			select {
			case <-time.After(wait):
			case <-w.wake:
			case <-ctx.Done():
			}
			continue
		}
		q.runJob(ctx, j, w)
	}
}

// runJob runs one job within its timeout and records its outcome.
func (q *Queue) runJob(ctx context.Context, j DeployJob, w *worker) {
	started, err := q.store.StartJob(ctx, j.ID, time.Now().UTC())
	if err != nil || !started {
		if err != nil {
			q.log.Printf("start deploy #%d of %s: %v", j.ID, j.App, err)
			// Do not spin on a broken store.
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
		return
	}
	timeout := q.cfg.Timeout(ctx, j.App)
	jobCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	userCancel, cancelled := context.WithCancel(jobCtx)
	defer cancelled()
	q.mu.Lock()
	w.running, w.cancel = j.ID, cancelled
	q.mu.Unlock()

	release := 0
	detail, err := q.run(userCancel, j, func(n int) { release = n }, q.cfg.Out(j))

	q.mu.Lock()
	cancelDetail := w.cancelDetail
	w.running, w.cancel, w.cancelDetail = 0, nil, ""
	q.mu.Unlock()
	if ctx.Err() != nil {
		// The daemon is stopping: leave the job running in the store, so
		// the next start queues it again.
		return
	}
	status := JobSucceeded
	switch {
	case err == nil:
	case jobCtx.Err() == context.DeadlineExceeded:
		status, detail = JobFailed, fmt.Sprintf("timed out after %s", timeout)
	case cancelDetail != "":
		status, detail = JobCancelled, cancelDetail
	default:
		status, detail = JobFailed, err.Error()
	}
	if err := q.store.FinishJob(context.WithoutCancel(ctx), j.ID, status, release, detail, time.Now().UTC()); err != nil {
		q.log.Printf("record deploy #%d of %s: %v", j.ID, j.App, err)
	}
	q.log.Printf("deploy #%d of %s (%s %s) %s: %s", j.ID, j.App, j.Trigger, ShortRev(j.Rev), status, detail)
}

// ShortRev is the first 7 characters of a revision, as git shows it.
func ShortRev(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
