package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rivetr/rivetr/apps"
)

func TestDeployJobsAndGitState(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []string{"web", "api"} {
		if err := s.CreateApp(ctx, apps.App{Name: n, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// The history keeps the newest KeptJobs finished jobs of an app.
	var last apps.DeployJob
	for i := 0; i < KeptJobs+20; i++ {
		last, err = s.EnqueueJob(ctx, apps.DeployJob{App: "web", Trigger: "github", CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	other, _ := s.EnqueueJob(ctx, apps.DeployJob{App: "api", Trigger: "gitlab", CreatedAt: time.Now()})
	jobs, _ := s.Jobs(ctx, "web", 1000)
	if len(jobs) != KeptJobs || jobs[0].ID != last.ID || jobs[0].Status != apps.JobQueued || jobs[1].Status != apps.JobCoalesced {
		t.Errorf("%d jobs kept (want %d), newest %+v", len(jobs), KeptJobs, jobs[0])
	}
	if j, ok, _ := s.NextJob(ctx, "api"); !ok || j.ID != other.ID {
		t.Errorf("api's next job %+v %v", j, ok)
	}
	if ok, _ := s.StartJob(ctx, other.ID, time.Now()); !ok {
		t.Error("start a queued job")
	}
	if ok, _ := s.CancelQueuedJob(ctx, other.ID, "x", time.Now()); ok {
		t.Error("cancelled a running job as queued")
	}
	pending, _ := s.RequeueRunning(ctx)
	if len(pending) != 2 {
		t.Errorf("apps with queued jobs after requeue: %v", pending)
	}

	// Deliveries are seen once.
	now := time.Now()
	if fresh, _ := s.RecordDelivery(ctx, "github", "d1", now); !fresh {
		t.Error("first delivery not fresh")
	}
	if fresh, _ := s.RecordDelivery(ctx, "github", "d1", now); fresh {
		t.Error("replayed delivery fresh")
	}
	if fresh, _ := s.RecordDelivery(ctx, "gitlab", "d1", now); !fresh {
		t.Error("same ID of another provider not fresh")
	}
	if fresh, _ := s.RecordDelivery(ctx, "github", "d1", now.Add(deliveryTTL+time.Hour)); !fresh {
		t.Error("a delivery older than the TTL is still remembered")
	}

	// Credentials and deploy keys; a deploy key goes with its app.
	s.SetGitCredential(ctx, apps.GitCredential{Host: "github.com", User: "u", Token: "t", CreatedAt: now})
	if c, ok, _ := s.GitCredential(ctx, "github.com"); !ok || c.Token != "t" {
		t.Errorf("credential %+v", c)
	}
	s.SetGitCredential(ctx, apps.GitCredential{Host: "github.com"})
	if _, ok, _ := s.GitCredential(ctx, "github.com"); ok {
		t.Error("credential not removed")
	}
	s.SetDeployKey(ctx, apps.DeployKey{App: "web", Private: "p", Public: "k", CreatedAt: now})
	if err := s.RenameApp(ctx, "web", "www"); err != nil {
		t.Fatal(err)
	}
	if k, ok, _ := s.DeployKey(ctx, "www"); !ok || k.Public != "k" {
		t.Errorf("deploy key after rename %+v", k)
	}
	s.DeleteApp(ctx, "www")
	if jobs, _ := s.Jobs(ctx, "", 1000); len(jobs) != 1 {
		t.Errorf("jobs after deleting web: %d, want api's 1", len(jobs))
	}
}
