package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"pow.do/app/join"
)

// Tracker is one headless powdo-tracker with its own data directory.
type Tracker struct {
	Name     string
	Dir      string // data directory
	PassFile string
	Worker   string // hex pubkey, from the pairing saved by join
	Proc     *Proc
	env      []string
	bin      string
}

// NewTracker prepares a tracker's data directory and passphrase file (mode 0600).
func NewTracker(bin, root, name string, env []string) (*Tracker, error) {
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pf := filepath.Join(root, name+".pass")
	if err := os.WriteFile(pf, []byte("e2e passphrase for "+name+"\n"), 0o600); err != nil {
		return nil, err
	}
	return &Tracker{Name: name, Dir: dir, PassFile: pf, env: env, bin: bin}, nil
}

var catalogueProject = regexp.MustCompile(`(?m)^project id=(\d+) `)

// Join runs `powdo-tracker join LINK` and returns the project ids the catalogue offers.
func (t *Tracker) Join(ctx context.Context, link string) ([]int, error) {
	out, err := RunCmd(ctx, t.env, t.bin, "join", link, "--data-dir", t.Dir, "--passphrase-file", t.PassFile,
		"--catalogue-wait", "60s")
	if err != nil {
		return nil, fmt.Errorf("%s join: %w", t.Name, err)
	}
	cfg, err := join.LoadConfig(t.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s: pairing not saved after join: %w\n%s", t.Name, err, out)
	}
	t.Worker = cfg.Worker
	var ids []int
	for _, m := range catalogueProject.FindAllStringSubmatch(out, -1) {
		id, _ := strconv.Atoi(m[1])
		ids = append(ids, id)
	}
	return ids, nil
}

// RunArgs are the `powdo-tracker run` arguments for a session of the given length.
func (t *Tracker) RunArgs(project, activity int, memo string, duration, drain time.Duration) []string {
	return []string{"run", "--data-dir", t.Dir, "--passphrase-file", t.PassFile,
		"--project", strconv.Itoa(project), "--activity", strconv.Itoa(activity), "--memo", memo,
		"--duration", duration.String(), "--drain", drain.String(), "--status-every", "10s"}
}

// Start starts `powdo-tracker run` as a process logging to logDir/<name>.log.
func (t *Tracker) Start(logDir string, args []string) error {
	t.Proc = &Proc{Name: t.Name, Bin: t.bin, Args: args, Env: t.env, Log: filepath.Join(logDir, t.Name+".log")}
	return t.Proc.Start()
}

// DoneLine returns the tracker's last "done ..." line from its log ("" if none).
func (t *Tracker) DoneLine() string {
	b, err := os.ReadFile(t.Proc.Log)
	if err != nil {
		return ""
	}
	last := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "done ") {
			last = l
		}
	}
	return last
}
