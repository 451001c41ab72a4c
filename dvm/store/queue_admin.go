package store

import "context"

// KimaiQueueAdmin is what the operator's `powdo-dvm kimai` commands and the sync's
// start-up need beyond KimaiQueue. It is kept apart from Store so existing
// implementations keep compiling; the SQLite store implements it.
type KimaiQueueAdmin interface {
	// DeadJobs lists jobs that failed permanently, oldest first, at most limit (<= 0: all).
	DeadJobs(ctx context.Context, limit int) ([]Job, error)
	// RequeueDead makes dead jobs pending again, due now, with their attempts reset and
	// their last error kept until they run. A dead job whose key already has a pending job
	// is not duplicated: it is closed as done ("superseded") since the pending job does its
	// work. Ids that are not dead jobs give ErrNotFound and nothing changes. It returns how
	// many jobs were made pending.
	RequeueDead(ctx context.Context, ids []int64) (int, error)
	// UnsyncedSessions lists sessions (any state) with at least one segment whose Kimai
	// state is pending, oldest first: work a lost hook or failed enqueue left behind.
	UnsyncedSessions(ctx context.Context) ([]Session, error)
}
