// Package join pairs this device with an employer from an invite link (PROTOCOL.md
// section 7): make (or unlock) the worker key, claim the invite on the relay with a
// NIP-86 `claiminvite` signed by the invite key, send the DVM a gift-wrapped join request
// carrying the signed invite proof, wait for the catalogue, and persist the pairing in
// <datadir>/config.json (mode 0600, no secrets in it).
//
// Every error is an *engineapi.Problem that says what to do.
package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/app/engineapi"
	"pow.do/app/keys"
	"pow.do/app/publisher"
	"pow.do/shared/giftwrap"
	"pow.do/shared/invite"
	"pow.do/shared/nip86"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
)

// ConfigName is the pairing file inside the data directory.
const ConfigName = "config.json"

// Defaults for Options.
const (
	DefaultCatalogueTimeout = time.Minute
	DefaultAppVersion       = "0.1.0"
	DefaultCallTimeout      = 30 * time.Second
)

// ErrNotJoined: no config.json yet.
var ErrNotJoined = errors.New("this device has not joined an employer yet")

// Config is the pairing, as persisted. It holds no secret.
type Config struct {
	V           int       `json:"v"`
	DVM         string    `json:"dvm"`    // hex pubkey
	Worker      string    `json:"worker"` // hex pubkey
	Relays      []string  `json:"relays"`
	Blossoms    []string  `json:"blossoms"`
	Fingerprint string    `json:"fingerprint"`
	Name        string    `json:"name,omitempty"`
	InviteKey   string    `json:"invite_key"` // the invite's public key: lets a retry skip a claim already made
	JoinedAt    time.Time `json:"joined_at"`
}

// Options configure Join.
type Options struct {
	DataDir string
	// Passphrase protects a new key at rest, or unlocks the stored one.
	Passphrase string
	AppVersion string // default DefaultAppVersion
	Host       string // default os.Hostname()
	// CatalogueTimeout bounds the wait for the catalogue; negative: do not wait.
	CatalogueTimeout time.Duration
	HTTPClient       *http.Client
	Logger           *slog.Logger
}

// Result is a successful join.
type Result struct {
	Config Config
	// Catalogue is nil when none arrived within CatalogueTimeout; the publisher's
	// listener picks it up later (its first pass looks two days back).
	Catalogue *proto.Catalogue
}

// Join pairs the device. It reuses a key already in ks (unlocking it with
// opts.Passphrase if needed) and otherwise generates one. It is safe to call again after
// a failure: a claim already made with this key and invite is not repeated.
func Join(ctx context.Context, link string, ks *keys.Store, opts Options) (Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AppVersion == "" {
		opts.AppVersion = DefaultAppVersion
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if len(opts.Host) > proto.MaxHostBytes {
		opts.Host = opts.Host[:proto.MaxHostBytes]
	}
	if opts.CatalogueTimeout == 0 {
		opts.CatalogueTimeout = DefaultCatalogueTimeout
	}
	if opts.DataDir == "" {
		return Result{}, engineapi.Fail(engineapi.ProblemInternal, "no data directory configured", "Restart pow.do.", nil)
	}
	log := opts.Logger

	inv, err := invite.Parse(strings.TrimSpace(link))
	if err != nil {
		return Result{}, engineapi.Fail(engineapi.ProblemInviteInvalid, "this is not a valid pow.do invite link",
			"Copy the whole link from your employer's message (it starts with powdo:// or https://) and paste it again.", err)
	}
	inviteKey, err := inv.InviteKey()
	if err != nil {
		return Result{}, engineapi.Fail(engineapi.ProblemInviteInvalid, "the invite link's secret is not valid",
			"Ask your employer for a new invite link.", err)
	}
	log.Info("joining", "invite", inv.Redacted())

	sk, pk, err := workerKey(ks, opts.Passphrase)
	if err != nil {
		return Result{}, err
	}

	prior, err := LoadConfig(opts.DataDir)
	if err != nil && !errors.Is(err, ErrNotJoined) {
		return Result{}, engineapi.Fail(engineapi.ProblemInternal, "cannot read the saved pairing", "Check the data directory's permissions.", err)
	}
	pending, perr := loadPending(opts.DataDir)
	switch {
	case err == nil && prior.InviteKey == inviteKey && prior.Worker == pk,
		perr == nil && pending.InviteKey == inviteKey && pending.Worker == pk:
		log.Info("invite already claimed with this key; sending the join request again")
	default:
		if err := claim(ctx, opts.HTTPClient, inv, pk, log); err != nil {
			return Result{}, err
		}
		// The invite is spent: remember that, so a retry after a failed join request
		// does not claim again (the relay would refuse).
		if err := savePending(opts.DataDir, pendingJoin{InviteKey: inviteKey, Worker: pk}); err != nil {
			return Result{}, engineapi.Fail(engineapi.ProblemInternal, "cannot save the join progress", "Check free disk space and the data directory's permissions.", err)
		}
	}

	fp, err := invite.Fingerprint(inv.DVM, pk)
	if err != nil {
		return Result{}, engineapi.Fail(engineapi.ProblemInternal, "cannot compute the pairing fingerprint", "", err)
	}
	cfg := Config{
		V: 1, DVM: inv.DVM, Worker: pk, Relays: inv.Relays, Blossoms: inv.Blossoms,
		Fingerprint: fp, Name: inv.Name, InviteKey: inviteKey, JoinedAt: time.Now().UTC().Truncate(time.Second),
	}
	// config.json appears only once the DVM has been sent the join request: a device
	// with a config is joined, and nothing else would send that request later.
	cat, err := sendJoinRequest(ctx, inv, sk, pk, opts, func() error {
		if err := SaveConfig(opts.DataDir, cfg); err != nil {
			return engineapi.Fail(engineapi.ProblemInternal, "cannot save the pairing", "Check free disk space and the data directory's permissions.", err)
		}
		os.Remove(filepath.Join(opts.DataDir, pendingName))
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if cat != nil && cat.WorkerName != "" && cfg.Name == "" {
		cfg.Name = cat.WorkerName
		if err := SaveConfig(opts.DataDir, cfg); err != nil {
			log.Warn("cannot save the worker name", "err", err)
		}
	}
	log.Info("joined", "dvm", inv.DVM, "worker", pk, "fingerprint", fp, "catalogue", cat != nil)
	return Result{Config: cfg, Catalogue: cat}, nil
}

// workerKey returns the key to join with: the stored one (unlocked) or a new one.
func workerKey(ks *keys.Store, passphrase string) (sk, pk string, err error) {
	if ks.Exists() && ks.Locked() {
		if err := ks.Unlock(passphrase); err != nil {
			if errors.Is(err, keys.ErrWrongPassphrase) {
				return "", "", engineapi.Fail(engineapi.ProblemWrongPassphrase, "wrong passphrase for the key on this device",
					"Type the passphrase you chose when this device first joined.", err)
			}
			return "", "", engineapi.Fail(engineapi.ProblemInternal, "cannot open the key stored on this device", "", err)
		}
	}
	if !ks.Exists() {
		if _, err := ks.Generate(passphrase); err != nil {
			if errors.Is(err, keys.ErrWeakPassphrase) {
				return "", "", engineapi.Fail(engineapi.ProblemInvalidInput, err.Error(), "Choose a longer passphrase.", err)
			}
			return "", "", engineapi.Fail(engineapi.ProblemInternal, "cannot store a new key", "Check free disk space and the data directory's permissions.", err)
		}
	}
	if sk, err = ks.SecretKey(); err != nil {
		return "", "", engineapi.Fail(engineapi.ProblemInternal, "the key is not available", "Unlock the key and try again.", err)
	}
	pk, _ = ks.PublicKey()
	return sk, pk, nil
}

// claim calls claiminvite on every relay of the invite; one success is enough.
func claim(ctx context.Context, hc *http.Client, inv invite.Link, pk string, log *slog.Logger) error {
	var first error
	ok := 0
	for _, r := range inv.Relays {
		cctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		err := (&nip86.Client{SecretKey: inv.Secret, HTTP: hc}).ClaimInvite(cctx, r, pk)
		cancel()
		if err != nil {
			log.Warn("claiminvite refused", "relay", r, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		ok++
		log.Info("invite claimed", "relay", r, "worker", pk)
	}
	if ok > 0 {
		return nil
	}
	return claimProblem(first)
}

func claimProblem(err error) error {
	var re *nip86.RPCError
	if !errors.As(err, &re) {
		return engineapi.Fail(engineapi.ProblemInternal, "cannot claim the invite", "", err)
	}
	switch re.Status {
	case 0:
		return engineapi.Fail(engineapi.ProblemRelayUnreachable, "the relay in the invite cannot be reached",
			"Check your network connection and try again.", err)
	case http.StatusConflict, http.StatusGone:
		return engineapi.Fail(engineapi.ProblemInviteExpired, "invite expired or already used",
			"Ask your employer for a new invite link.", err)
	case http.StatusNotFound:
		return engineapi.Fail(engineapi.ProblemInviteExpired, "the relay does not know this invite (expired, revoked or already used)",
			"Ask your employer for a new invite link.", err)
	case http.StatusForbidden:
		return engineapi.Fail(engineapi.ProblemKeyNotAllowed, "the relay refused this invite: "+re.Msg,
			"Ask your employer for a new invite link.", err)
	case http.StatusUnauthorized:
		return engineapi.Fail(engineapi.ProblemInviteInvalid, "the relay did not accept the invite's signature: "+re.Msg,
			"Check that this computer's clock is right, then try again.", err)
	case http.StatusTooManyRequests:
		return engineapi.Fail(engineapi.ProblemRelayUnreachable, "the relay is busy", "Wait a minute and try again.", err)
	}
	if re.Status >= 500 {
		return engineapi.Fail(engineapi.ProblemRelayUnreachable, "the relay had a problem", "Try again in a few minutes.", err)
	}
	return engineapi.Fail(engineapi.ProblemInviteInvalid, "the relay refused the invite: "+re.Msg, "Ask your employer for a new invite link.", err)
}

// sendJoinRequest publishes the join request to every relay (one is enough) and waits
// for the catalogue on the same connections.
func sendJoinRequest(ctx context.Context, inv invite.Link, sk, pk string, opts Options, onSent func() error) (*proto.Catalogue, error) {
	proof, err := proto.NewInviteProof(inv.Secret, inv.DVM, pk)
	if err != nil {
		return nil, engineapi.Fail(engineapi.ProblemInternal, "cannot sign the invite proof", "", err)
	}
	jr := proto.JoinRequest{To: inv.DVM, Proof: proof, AppVersion: opts.AppVersion, Host: opts.Host}
	if err := jr.Validate(); err != nil {
		return nil, engineapi.Fail(engineapi.ProblemInternal, "cannot build the join request", "", err)
	}
	wrap, err := giftwrap.Wrap(jr.Rumor(pk), sk, inv.DVM)
	if err != nil {
		return nil, engineapi.Fail(engineapi.ProblemInternal, "cannot wrap the join request", "", err)
	}

	since := nostr.Timestamp(time.Now().Add(-publisher.WrapBackdate).Unix())
	events := make(chan nostr.Event, 64)
	var conns []*relayconn.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var first error
	sent := 0
	for _, r := range inv.Relays {
		c, err := relayconn.Dial(ctx, r, sk, relayconn.Options{Logger: opts.Logger})
		if err != nil {
			first = cmp(first, err)
			opts.Logger.Warn("relay unreachable", "relay", r, "err", err)
			continue
		}
		conns = append(conns, c)
		// Subscribe before publishing so a fast DVM's catalogue cannot slip past.
		sub, err := c.Subscribe(ctx, "join", nostr.Filter{Kinds: []int{proto.KindGiftWrap}, Tags: nostr.TagMap{"p": {pk}}, Since: &since})
		if err == nil {
			// Ends when the connection closes (on return) or the relay closes the REQ.
			go func() {
				for {
					ev, eose, err := sub.Next(ctx)
					if err != nil {
						return
					}
					if eose {
						continue
					}
					select {
					case events <- *ev:
					case <-c.Done():
						return
					}
				}
			}()
		}
		if err := c.Publish(ctx, wrap); err != nil {
			first = cmp(first, err)
			opts.Logger.Warn("join request refused", "relay", r, "err", err)
			continue
		}
		sent++
	}
	if sent == 0 {
		var rf *relayconn.Refusal
		if errors.As(first, &rf) && strings.Contains(rf.Reason, "recipient") {
			return nil, engineapi.Fail(engineapi.ProblemKeyNotAllowed, "the relay does not accept messages for your employer's DVM ("+rf.Reason+")",
				"Tell your employer that their DVM's key is not allowed on the relay, then join again with the same link: the invite stays yours.", first)
		}
		if relayconn.IsNotAllowed(first) {
			return nil, engineapi.Fail(engineapi.ProblemKeyNotAllowed, "the relay does not accept this key",
				"Ask your employer for a new invite link.", first)
		}
		return nil, engineapi.Fail(engineapi.ProblemRelayUnreachable, "cannot send the join request: the relay is unreachable",
			"Check your network connection and join again with the same link: the invite stays yours.", first)
	}
	opts.Logger.Info("join request sent", "wrap", wrap.ID[:8], "relays", sent)
	if err := onSent(); err != nil {
		return nil, err
	}
	if opts.CatalogueTimeout < 0 {
		return nil, nil
	}
	t := time.NewTimer(opts.CatalogueTimeout)
	defer t.Stop()
	for {
		select {
		case ev := <-events:
			if cat, ok := catalogueFrom(ev, sk, inv.DVM, opts.Logger); ok {
				return &cat, nil
			}
		case <-t.C:
			opts.Logger.Warn("no catalogue yet; it will arrive once the DVM is online", "waited", opts.CatalogueTimeout)
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func cmp(first, err error) error {
	if first == nil {
		return err
	}
	return first
}

func catalogueFrom(ev nostr.Event, sk, dvm string, log *slog.Logger) (proto.Catalogue, bool) {
	rumor, sender, err := giftwrap.Unwrap(ev, sk)
	if err != nil {
		log.Warn("message ignored", "wrap", ev.ID, "err", err)
		return proto.Catalogue{}, false
	}
	if sender != dvm || rumor.Kind != proto.KindCatalogue {
		return proto.Catalogue{}, false
	}
	cat, err := proto.ParseCatalogue(rumor)
	if err != nil {
		log.Warn("catalogue refused", "err", err)
		return proto.Catalogue{}, false
	}
	return cat, true
}

// pendingName records a claimed invite whose join request has not gone out yet.
const pendingName = "join-pending.json"

type pendingJoin struct {
	InviteKey string `json:"invite_key"`
	Worker    string `json:"worker"`
}

func loadPending(dataDir string) (pendingJoin, error) {
	var p pendingJoin
	b, err := os.ReadFile(filepath.Join(dataDir, pendingName))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("read %s: %w", pendingName, err)
	}
	return p, nil
}

func savePending(dataDir string, p pendingJoin) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writePrivate(dataDir, pendingName, b)
}

// LoadConfig reads <dataDir>/config.json; ErrNotJoined when there is none.
func LoadConfig(dataDir string) (Config, error) {
	path := filepath.Join(dataDir, ConfigName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, ErrNotJoined
	}
	if err != nil {
		return Config{}, fmt.Errorf("read %s: %w", path, err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("read %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("read %s: %w", path, err)
	}
	return c, nil
}

// Validate checks a pairing read from disk.
func (c Config) Validate() error {
	switch {
	case c.V != 1:
		return fmt.Errorf("config version %d, want 1", c.V)
	case !proto.ValidPubkey(c.DVM):
		return errors.New("config: dvm is not a valid pubkey")
	case !proto.ValidPubkey(c.Worker):
		return errors.New("config: worker is not a valid pubkey")
	case len(c.Relays) == 0 || len(c.Blossoms) == 0:
		return errors.New("config: needs at least one relay and one Blossom server")
	}
	return nil
}

// SaveConfig writes <dataDir>/config.json atomically with mode 0600.
func SaveConfig(dataDir string, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := writePrivate(dataDir, ConfigName, append(b, '\n')); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// writePrivate writes dataDir/name (mode 0600) through a synced temp file and a rename.
func writePrivate(dataDir, name string, data []byte) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dataDir, ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dataDir, name))
}
