package apps_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

// recorder is a JobRunner that records the jobs it ran and can block.
type recorder struct {
	mu      sync.Mutex
	ran     []apps.DeployJob
	running map[string]int // concurrent runs per app
	overlap bool
	block   chan struct{} // when set, each run waits on it or its ctx
	done    chan int64
}

func newRecorder() *recorder {
	return &recorder{running: map[string]int{}, done: make(chan int64, 100)}
}

func (r *recorder) run(ctx context.Context, j apps.DeployJob, onRelease func(int), _ io.Writer) (string, error) {
	r.mu.Lock()
	r.ran = append(r.ran, j)
	r.running[j.App]++
	if r.running[j.App] > 1 {
		r.overlap = true
	}
	block := r.block
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running[j.App]--
		r.mu.Unlock()
		r.done <- j.ID
	}()
	onRelease(7)
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if j.Rev == "bad" {
		return "", errors.New("build failed")
	}
	return "deployed", nil
}

func openQueueStore(t *testing.T, path string, names ...string) *store.SQLite {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := apps.NewService(db)
	for _, n := range names {
		if _, err := svc.Create(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func waitJob(t *testing.T, r *recorder) int64 {
	t.Helper()
	select {
	case id := <-r.done:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no job finished")
		return 0
	}
}

func waitStatus(t *testing.T, db apps.JobStore, id int64, status string) apps.DeployJob {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := db.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == status {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job #%d is %s (%s), want %s", id, j.Status, j.Detail, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueueCoalescesABurstIntoTheNewest(t *testing.T) {
	db := openQueueStore(t, filepath.Join(t.TempDir(), "q.db"), "web", "api")
	r := newRecorder()
	q := apps.NewQueue(db, r.run, nopLog{}, apps.QueueConfig{Settle: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Wait() }()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, rev := range []string{"r1", "r2", "r3", "r4", "r5"} {
		j, err := q.Enqueue(ctx, apps.DeployJob{App: "web", Trigger: "github", Ref: "main", Rev: rev})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	other, _ := q.Enqueue(ctx, apps.DeployJob{App: "api", Trigger: "gitlab", Ref: "main", Rev: "a1"})
	waitJob(t, r)
	waitJob(t, r)
	last := waitStatus(t, db, ids[4], apps.JobSucceeded)
	if last.Release != 7 || last.Detail != "deployed" || last.StartedAt.IsZero() || last.FinishedAt.IsZero() {
		t.Errorf("newest job %+v", last)
	}
	for _, id := range ids[:4] {
		j := waitStatus(t, db, id, apps.JobCoalesced)
		if j.Detail == "" {
			t.Errorf("coalesced job #%d has no detail", id)
		}
	}
	waitStatus(t, db, other.ID, apps.JobSucceeded)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ran) != 2 {
		t.Fatalf("ran %d jobs, want 2 (the newest of web, and api)", len(r.ran))
	}
	for _, j := range r.ran {
		if j.App == "web" && j.Rev != "r5" {
			t.Errorf("web deployed %s, want r5", j.Rev)
		}
	}
}

func TestQueueRunsOneDeployPerAppAndRecordsFailures(t *testing.T) {
	db := openQueueStore(t, filepath.Join(t.TempDir(), "q.db"), "web")
	r := newRecorder()
	r.block = make(chan struct{})
	q := apps.NewQueue(db, r.run, nopLog{}, apps.QueueConfig{Settle: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Wait() }()
	q.Start(ctx)
	first, _ := q.Enqueue(ctx, apps.DeployJob{App: "web", Rev: "r1"})
	waitStatus(t, db, first.ID, apps.JobRunning)
	second, _ := q.Enqueue(ctx, apps.DeployJob{App: "web", Rev: "bad"})
	time.Sleep(50 * time.Millisecond)
	if j, _ := db.Job(ctx, second.ID); j.Status != apps.JobQueued {
		t.Errorf("second job is %s while the first runs, want queued", j.Status)
	}
	close(r.block)
	waitStatus(t, db, first.ID, apps.JobSucceeded)
	failed := waitStatus(t, db, second.ID, apps.JobFailed)
	if failed.Detail != "build failed" {
		t.Errorf("failed job detail %q", failed.Detail)
	}
	if r.overlap {
		t.Error("two deploys of one app ran at once")
	}
}

func TestQueueTimeoutAndCancel(t *testing.T) {
	db := openQueueStore(t, filepath.Join(t.TempDir(), "q.db"), "web", "api")
	r := newRecorder()
	r.block = make(chan struct{}) // never closed: runs end by timeout or cancel
	q := apps.NewQueue(db, r.run, nopLog{}, apps.QueueConfig{
		Settle: time.Millisecond,
		Timeout: func(_ context.Context, app string) time.Duration {
			if app == "api" {
				return 100 * time.Millisecond
			}
			return time.Hour
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Wait() }()
	q.Start(ctx)

	slow, _ := q.Enqueue(ctx, apps.DeployJob{App: "api", Rev: "r1"})
	timedOut := waitStatus(t, db, slow.ID, apps.JobFailed)
	if timedOut.Detail != "timed out after 100ms" {
		t.Errorf("timed out job detail %q", timedOut.Detail)
	}

	running, _ := q.Enqueue(ctx, apps.DeployJob{App: "web", Rev: "r1"})
	waitStatus(t, db, running.ID, apps.JobRunning)
	queued, _ := q.Enqueue(ctx, apps.DeployJob{App: "web", Rev: "r2"})
	if _, err := q.Cancel(ctx, queued.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if j := waitStatus(t, db, queued.ID, apps.JobCancelled); j.Detail != "cancelled by alice" {
		t.Errorf("cancelled queued job detail %q", j.Detail)
	}
	if _, err := q.Cancel(ctx, running.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if j := waitStatus(t, db, running.ID, apps.JobCancelled); j.Detail != "cancelled by bob" || j.Release != 7 {
		t.Errorf("cancelled running job %+v", j)
	}
	if _, err := q.Cancel(ctx, running.ID, "bob"); !errors.Is(err, apps.ErrJobFinished) {
		t.Errorf("cancel of a finished job: %v", err)
	}
	if _, err := q.Cancel(ctx, 9999, "bob"); !errors.Is(err, apps.ErrJobNotFound) {
		t.Errorf("cancel of a missing job: %v", err)
	}
}

func TestQueueSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	db := openQueueStore(t, path, "web", "api")
	r := newRecorder()
	r.block = make(chan struct{})
	q := apps.NewQueue(db, r.run, nopLog{}, apps.QueueConfig{Settle: time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	q.Start(ctx)
	running, _ := q.Enqueue(ctx, apps.DeployJob{App: "web", Rev: "r1"})
	waitStatus(t, db, running.ID, apps.JobRunning)
	// Stopped before it runs: queued while the daemon stops.
	stop()
	q.Wait()
	queued, err := db.EnqueueJob(context.Background(), apps.DeployJob{App: "api", Rev: "a1", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := db.Job(context.Background(), running.ID); j.Status != apps.JobRunning {
		t.Fatalf("a job cut off by the stop is %s, want still running in the store", j.Status)
	}
	db.Close()

	db2 := openQueueStore(t, path)
	r2 := newRecorder()
	q2 := apps.NewQueue(db2, r2.run, nopLog{}, apps.QueueConfig{Settle: time.Millisecond})
	ctx2, stop2 := context.WithCancel(context.Background())
	defer func() { stop2(); q2.Wait() }()
	if err := q2.Start(ctx2); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, db2, running.ID, apps.JobSucceeded)
	waitStatus(t, db2, queued.ID, apps.JobSucceeded)
}
