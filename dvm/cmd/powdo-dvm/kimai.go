package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"pow.do/dvm/daemon"
	"pow.do/dvm/kimaisync"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

func init() {
	register(command{
		name:    "kimai",
		summary: "inspect and retry the Kimai sync queue: status (depth, dead jobs), retry --session ID | --all-dead",
		run:     runKimai,
	})
}

const kimaiUsage = `subcommands:
  kimai status                 pending job count and every dead job with its last error
  kimai retry --session ID     make the session's dead sync jobs pending again (or queue a
                               fresh sync of it if none died)
  kimai retry --all-dead       make every dead job pending again
A running DVM picks retried jobs up at its next poll (15 s by default).
The data directory comes from --data-dir, POWDO_DVM_DATA_DIR, the config file's data_dir
(--config or POWDO_DVM_CONFIG), or /var/lib/powdo-dvm.`

func runKimai(ctx context.Context, args []string) error {
	fs := newFlagSet("kimai")
	config := fs.String("config", "", "JSON configuration `file` to read data_dir from (env POWDO_DVM_CONFIG)")
	dataDir := fs.String("data-dir", "", "data `dir`ectory (env POWDO_DVM_DATA_DIR; default /var/lib/powdo-dvm)")
	session := fs.String("session", "", "retry: the session `id` (32 hex) whose sync to retry")
	allDead := fs.Bool("all-dead", false, "retry: every dead job")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), kimaiUsage)
	}
	var pos []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != 1 || (pos[0] != "status" && pos[0] != "retry") {
		return usageError{"name one subcommand: status or retry"}
	}
	sub := pos[0]
	switch {
	case sub == "status" && (*session != "" || *allDead):
		return usageError{"kimai status takes no --session or --all-dead"}
	case sub == "retry" && (*session != "") == *allDead:
		return usageError{"kimai retry needs exactly one of --session ID or --all-dead"}
	case *session != "" && !store.IsHex(*session, 32):
		return usageError{fmt.Sprintf("--session %q: not a 32-hex session id", clipArg(*session))}
	}
	dir, err := resolveDataDir(*config, *dataDir, os.Getenv)
	if err != nil {
		return err
	}
	defaults := daemon.DefaultConfig()
	db, err := sqlite.Open(dir, sqlite.WithLogger(defaults.Logger(stderr)))
	if err != nil {
		return err
	}
	defer db.Close()
	if sub == "status" {
		return kimaiStatus(ctx, db)
	}
	return kimaiRetry(ctx, db, *session)
}

func clipArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// kimaiStatus prints the queue depth and the dead jobs, newest error included.
func kimaiStatus(ctx context.Context, db *sqlite.DB) error {
	depth, err := db.QueueDepth(ctx)
	if err != nil {
		return err
	}
	dead, err := db.DeadJobs(ctx, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pending jobs: %d\ndead jobs: %d\n", depth, len(dead))
	if len(dead) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSESSION\tATTEMPTS\tDIED\tLAST ERROR")
	for _, j := range dead {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", j.ID, jobSession(j), j.Attempts, j.DoneAt.UTC().Format(time.RFC3339),
			oneLine(j.LastError))
	}
	return tw.Flush()
}

// jobSession is the session a sync job is for, or its op for other jobs.
func jobSession(j store.Job) string {
	var p struct {
		Session string `json:"session"`
	}
	if j.Op == kimaisync.OpSyncSession && json.Unmarshal(j.Payload, &p) == nil && p.Session != "" {
		return p.Session
	}
	return j.Op
}

func oneLine(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}

// kimaiRetry requeues dead jobs: all of them, or the given session's. A session without
// a dead job gets a fresh sync job, so an operator can also push a session that was
// never queued.
func kimaiRetry(ctx context.Context, db *sqlite.DB, session string) error {
	dead, err := db.DeadJobs(ctx, 0)
	if err != nil {
		return err
	}
	var ids []int64
	for _, j := range dead {
		if session == "" || j.Key == kimaisync.JobKey(session) {
			ids = append(ids, j.ID)
		}
	}
	if len(ids) > 0 {
		n, err := db.RequeueDead(ctx, ids)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead job(s) pending again; %d already had a pending job\n", n, len(ids)-n)
		return nil
	}
	if session == "" {
		fmt.Fprintln(stdout, "no dead jobs")
		return nil
	}
	s, err := db.Session(ctx, session)
	if err != nil {
		return err
	}
	id, err := db.Enqueue(ctx, kimaisync.SyncJob(s.ID, s.Worker))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "session %s had no dead job; queued sync job %d\n", s.ID, id)
	return nil
}
