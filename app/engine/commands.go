package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"pow.do/app/engineapi"
	"pow.do/app/join"
	"pow.do/app/keys"
	"pow.do/app/session"
	"pow.do/shared/proto"
)

// problemFor turns scheduler errors into problems the worker can act on.
func problemFor(err error) error {
	notReady := func(msg, action string) error { return engineapi.Fail(engineapi.ProblemNotReady, msg, action, err) }
	invalid := func(msg, action string) error { return engineapi.Fail(engineapi.ProblemInvalidInput, msg, action, err) }
	switch {
	case err == nil:
		return nil
	case errors.Is(err, session.ErrRunning):
		return notReady("The timer is already running.", "Stop it before starting a new session.")
	case errors.Is(err, session.ErrNotRunning):
		return notReady("The timer is not running.", "Start the timer first.")
	case errors.Is(err, session.ErrPaused):
		return notReady("The timer is already paused.", "Resume or stop it.")
	case errors.Is(err, session.ErrNotPaused):
		return notReady("The timer is not paused.", "Nothing to resume.")
	case errors.Is(err, session.ErrNoIdlePrompt):
		return notReady("pow.do is not asking about idle time.", "Nothing to decide.")
	case errors.Is(err, session.ErrNotInReview):
		return notReady("This segment is sealed and on its way to your employer; its screenshots can no longer be changed.",
			"Review screenshots while a segment is waiting for review.")
	case errors.Is(err, session.ErrNoScreenshot):
		return invalid("That screenshot is not in the segment (or was already deleted).", "Reload the review panel.")
	case errors.Is(err, session.ErrNoSegment):
		return invalid("There is no such segment.", "Pick a segment from today's timeline.")
	case errors.Is(err, session.ErrBadChoice):
		return invalid("Unknown idle choice.", "Choose keep, discard or stop.")
	}
	return err
}

func notJoined() error {
	return engineapi.Fail(engineapi.ProblemNotReady, "This device has not joined an employer yet.", "Paste the invite link your employer sent you.", nil)
}

// Join pairs the device with an employer from an invite link.
func (e *Engine) Join(ctx context.Context, link, passphrase string) (engineapi.JoinResult, error) {
	e.mu.Lock()
	joined := e.joined != nil
	e.mu.Unlock()
	if joined {
		return engineapi.JoinResult{}, engineapi.Fail(engineapi.ProblemNotReady, "This device has already joined an employer.",
			"To join another employer, use a separate data directory (POWDO_DATA_DIR).", nil)
	}
	if !e.ks.Exists() {
		if err := engineapi.CheckPassphrase(passphrase); err != nil {
			return engineapi.JoinResult{}, err
		}
	}
	res, err := join.Join(ctx, link, e.ks, join.Options{
		DataDir: e.cfg.DataDir, Passphrase: passphrase, AppVersion: AppVersion,
		CatalogueTimeout: e.cfg.CatalogueWait, HTTPClient: e.cfg.HTTPClient, Logger: e.log,
	})
	if err != nil {
		return engineapi.JoinResult{}, err
	}
	e.mu.Lock()
	jc := res.Config
	e.joined = &jc
	e.applyJoinedLocked(jc)
	settings := e.settings
	e.mu.Unlock()
	if err := saveSettings(e.cfg.DataDir, settings); err != nil {
		e.log.Error("save settings", "err", err)
	}
	if res.Catalogue != nil {
		e.onCatalogue(*res.Catalogue)
	}
	if err := e.startPublisher(); err != nil {
		return engineapi.JoinResult{}, err
	}
	e.events.stateChanged()
	name := jc.Name
	if res.Catalogue != nil && res.Catalogue.WorkerName != "" {
		name = res.Catalogue.WorkerName
	}
	return engineapi.JoinResult{Fingerprint: jc.Fingerprint, DVMNpub: settings.DVMNpub, OwnNpub: settings.OwnNpub, WorkerName: name}, nil
}

// Unlock decrypts the stored key and starts delivering.
func (e *Engine) Unlock(ctx context.Context, passphrase string) error {
	if !e.ks.Exists() {
		return engineapi.Fail(engineapi.ProblemNotReady, "There is no key on this device yet.", "Join with the invite link your employer sent you.", nil)
	}
	if err := e.ks.Unlock(passphrase); err != nil {
		if errors.Is(err, keys.ErrWrongPassphrase) {
			return engineapi.Fail(engineapi.ProblemWrongPassphrase, "Wrong passphrase.", "Type the passphrase you chose when this device joined.", err)
		}
		return fmt.Errorf("unlock the key: %w", err)
	}
	if err := e.startPublisher(); err != nil {
		return err
	}
	e.events.stateChanged()
	return nil
}

// Catalogue is the last catalogue received.
func (e *Engine) Catalogue(ctx context.Context) (engineapi.Catalogue, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.joined == nil {
		return engineapi.Catalogue{}, notJoined()
	}
	if e.catalogue == nil {
		return engineapi.Catalogue{}, engineapi.Fail(engineapi.ProblemNotReady, "Your employer's project list has not arrived yet.",
			"Stay online; it arrives once your employer's pow.do daemon answers. You can ask for it again from the settings.", nil)
	}
	return *e.catalogue, nil
}

// RefreshCatalogue asks the DVM for the catalogue again.
func (e *Engine) RefreshCatalogue(ctx context.Context) error {
	e.mu.Lock()
	joined, pub := e.joined != nil, e.pub
	e.mu.Unlock()
	if !joined {
		return notJoined()
	}
	if pub == nil {
		return engineapi.Fail(engineapi.ProblemNotReady, "The key is locked.", "Unlock it with your passphrase first.", nil)
	}
	if _, err := pub.RequestCatalogue(ctx); err != nil {
		return fmt.Errorf("ask for the catalogue: %w", err)
	}
	return nil
}

// lookup finds a project and an activity usable with it in the catalogue.
func lookup(c engineapi.Catalogue, projectID, activityID int) (engineapi.Project, engineapi.Activity, error) {
	pi := slices.IndexFunc(c.Projects, func(p engineapi.Project) bool { return p.ID == projectID })
	if pi < 0 {
		return engineapi.Project{}, engineapi.Activity{}, engineapi.Fail(engineapi.ProblemInvalidInput,
			fmt.Sprintf("Project %d is not in your catalogue.", projectID), "Pick a project from the list.", nil)
	}
	for _, a := range c.Activities {
		if a.ID == activityID && (a.Project == nil || *a.Project == projectID) {
			return c.Projects[pi], a, nil
		}
	}
	return engineapi.Project{}, engineapi.Activity{}, engineapi.Fail(engineapi.ProblemInvalidInput,
		fmt.Sprintf("Activity %d cannot be booked to %s.", activityID, c.Projects[pi].Name), "Pick an activity from the list.", nil)
}

// Start opens a session on a project and activity from the catalogue.
func (e *Engine) Start(ctx context.Context, projectID, activityID int, memo string) error {
	if len(memo) > proto.MaxMemoBytes || !utf8.ValidString(memo) {
		return engineapi.Fail(engineapi.ProblemInvalidInput, fmt.Sprintf("The memo must be text of at most %d bytes.", proto.MaxMemoBytes), "Shorten the memo.", nil)
	}
	cat, err := e.Catalogue(ctx)
	if err != nil {
		return err
	}
	project, activity, err := lookup(cat, projectID, activityID)
	if err != nil {
		return err
	}
	_, err = e.sched.Start(ctx, session.StartParams{
		Project: int64(project.ID), ProjectName: project.Name, Activity: int64(activity.ID), ActivityName: activity.Name, Memo: memo,
	})
	if err != nil {
		return problemFor(err)
	}
	e.flushMessages(ctx)
	return nil
}

// flushMessages queues session messages now rather than at the next step.
func (e *Engine) flushMessages(ctx context.Context) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	if err := e.sendSessionMessages(ctx); err != nil {
		e.log.Warn("queue session message", "err", err)
	}
}

func (e *Engine) Pause(ctx context.Context) error { return problemFor(e.sched.Pause(ctx)) }

func (e *Engine) Resume(ctx context.Context) error { return problemFor(e.sched.Resume(ctx)) }

// Stop closes the current segment and the session; the stop message is queued at once.
func (e *Engine) Stop(ctx context.Context) error {
	if err := e.sched.Stop(ctx); err != nil {
		return problemFor(err)
	}
	e.flushMessages(ctx)
	return nil
}

// IdleDecision answers the idle prompt.
func (e *Engine) IdleDecision(ctx context.Context, choice engineapi.IdleChoice) error {
	if !choice.Valid() {
		return engineapi.Fail(engineapi.ProblemInvalidInput, fmt.Sprintf("Unknown idle choice %q.", choice), "Choose keep, discard or stop.", nil)
	}
	if err := e.sched.IdleDecision(ctx, string(choice)); err != nil {
		return problemFor(err)
	}
	if choice == engineapi.IdleStop {
		e.flushMessages(ctx)
	}
	return nil
}

// Settings returns the settings with the read-only fields filled in.
func (e *Engine) Settings(ctx context.Context) (engineapi.Settings, error) {
	e.mu.Lock()
	s := e.settings
	s.Relays, s.Blossoms, s.ExcludedApps = slices.Clone(s.Relays), slices.Clone(s.Blossoms), slices.Clone(s.ExcludedApps)
	e.mu.Unlock()
	s.DiskUsedMB = e.diskUsedMB(ctx)
	if s.ExcludedApps == nil {
		s.ExcludedApps = []string{}
	}
	return s, nil
}

// SaveSettings validates and stores the editable settings and applies them: a new
// ActivityWatch address at once, new servers by restarting the publisher. A new disk
// quota takes effect at the next start.
func (e *Engine) SaveSettings(ctx context.Context, in engineapi.Settings) (engineapi.Settings, error) {
	e.mu.Lock()
	next := e.settings.WithEditable(in)
	if err := next.Validate(); err != nil {
		e.mu.Unlock()
		return engineapi.Settings{}, err
	}
	serversChanged := !slices.Equal(next.Relays, e.settings.Relays) || !slices.Equal(next.Blossoms, e.settings.Blossoms)
	e.settings = next
	running := e.pub != nil
	e.mu.Unlock()
	if err := saveSettings(e.cfg.DataDir, next); err != nil {
		return engineapi.Settings{}, err
	}
	e.col.configure(next)
	if serversChanged && running {
		e.stopPublisher()
		if err := e.startPublisher(); err != nil {
			return engineapi.Settings{}, err
		}
	}
	e.events.stateChanged()
	return e.Settings(ctx)
}

// ExportKey returns the key as an ncryptsec under passphrase.
func (e *Engine) ExportKey(ctx context.Context, passphrase string) (string, error) {
	if err := engineapi.CheckPassphrase(passphrase); err != nil {
		return "", err
	}
	s, err := e.ks.Export(passphrase)
	switch {
	case errors.Is(err, keys.ErrLocked):
		return "", engineapi.Fail(engineapi.ProblemNotReady, "The key is locked.", "Unlock it with your passphrase first.", err)
	case errors.Is(err, keys.ErrNoKey):
		return "", engineapi.Fail(engineapi.ProblemNotReady, "There is no key on this device yet.", "Join with the invite link your employer sent you.", err)
	case err != nil:
		return "", fmt.Errorf("export the key: %w", err)
	}
	return s, nil
}

// Subscribe registers fn for pushed changes.
func (e *Engine) Subscribe(fn func(engineapi.Event)) func() { return e.events.subscribe(fn) }
