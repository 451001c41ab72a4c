package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"pow.do/dvm/kimaisync"
	"pow.do/dvm/store/sqlite"
)

// TestKimaiStatusAndRetry: a dead sync job shows in `kimai status` with its error, and
// `kimai retry --session` makes it pending again, exactly once.
func TestKimaiStatusAndRetry(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sqlite.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sid := strings.Repeat("ab", 16)
	worker := strings.Repeat("cd", 32)
	if _, err := db.Enqueue(ctx, kimaisync.SyncJob(sid, worker)); err != nil {
		t.Fatal(err)
	}
	jobs, err := db.LeaseJobs(ctx, 1, time.Minute)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("lease: %v %v", jobs, err)
	}
	if _, err := db.FailJob(ctx, jobs[0].ID, jobs[0].Lease, "kimai 400: project: This value is not valid.", true); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, errOut, code := runCLI(t, "kimai", "status", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "pending jobs: 0") || !strings.Contains(out, "dead jobs: 1") ||
		!strings.Contains(out, sid) || !strings.Contains(out, "This value is not valid") {
		t.Fatalf("status (%d):\n%s\n%s", code, out, errOut)
	}
	if _, _, code := runCLI(t, "kimai", "retry", "--data-dir", dir); code != 2 {
		t.Errorf("retry without --session or --all-dead exited %d, want 2", code)
	}
	out, errOut, code = runCLI(t, "kimai", "retry", "--data-dir", dir, "--session", sid)
	if code != 0 || !strings.Contains(out, "1 dead job(s) pending again") {
		t.Fatalf("retry (%d):\n%s\n%s", code, out, errOut)
	}
	out, _, _ = runCLI(t, "kimai", "status", "--data-dir", dir)
	if !strings.Contains(out, "pending jobs: 1") || !strings.Contains(out, "dead jobs: 0") {
		t.Errorf("status after retry:\n%s", out)
	}
	// Retrying again finds nothing dead and queues no duplicate (the pending key coalesces).
	runCLI(t, "kimai", "retry", "--data-dir", dir, "--session", sid)
	out, _, _ = runCLI(t, "kimai", "status", "--data-dir", dir)
	if !strings.Contains(out, "pending jobs: 1") {
		t.Errorf("status after a second retry:\n%s", out)
	}
}
