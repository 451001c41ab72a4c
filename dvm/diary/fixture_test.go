package diary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/diary"
	seed "pow.do/dvm/diary/diarytest"
	"pow.do/dvm/diary/password"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

// cheap keeps password checks fast in tests; hashes carry their own parameters.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const (
	reviewer   = "rita"
	reviewerPW = "correct horse battery staple"
)

// shared is one store filled through the real ingest path, used by every test that only
// reads it (seeding takes seconds under the race detector).
type shared struct {
	db    *sqlite.DB
	data  *seed.Dataset
	dvmSK string
	clock *seed.Clock
}

var (
	sharedOnce sync.Once
	sharedFix  *shared
	sharedErr  error
	sharedDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedFix != nil {
		sharedFix.db.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func fixture(t testing.TB) *shared {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "diary-test-")
		if sharedErr != nil {
			return
		}
		c := seed.NewClock(seed.StandardNow)
		db, err := sqlite.Open(sharedDir+"/data", sqlite.WithClock(c.Now), sqlite.WithLogger(quietLog()))
		if err != nil {
			sharedErr = err
			return
		}
		sk := nostr.GeneratePrivateKey()
		env, err := seed.Start(db, sk, c.Now)
		if err != nil {
			sharedErr = err
			return
		}
		defer env.Close()
		env.Clock = c
		data, err := seed.Standard(context.Background(), env)
		if err != nil {
			sharedErr = err
			return
		}
		c.Set(seed.StandardNow)
		h, err := password.Hash(reviewerPW, cheap)
		if err != nil {
			sharedErr = err
			return
		}
		if err := db.AddReviewer(context.Background(), store.Reviewer{Username: reviewer, PasswordHash: h}); err != nil {
			sharedErr = err
			return
		}
		sharedFix = &shared{db: db, data: data, dvmSK: sk, clock: c}
	})
	if sharedErr != nil {
		t.Fatalf("seed the shared store: %v", sharedErr)
	}
	return sharedFix
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// server starts a diary over the shared store on 127.0.0.1.
func (f *shared) server(t testing.TB, mod func(*diary.Options)) (*httptest.Server, *diary.Diary) {
	t.Helper()
	opt := diary.Options{CacheDir: t.TempDir(), SecretKey: f.dvmSK, PasswordParams: cheap, Log: quietLog(), Now: f.clock.Now}
	if mod != nil {
		mod(&opt)
	}
	d, err := diary.Open(f.db, opt)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = d
	if opt.BasePath != "" {
		mux := http.NewServeMux()
		mux.Handle(opt.BasePath+"/", http.StripPrefix(opt.BasePath, d))
		h = mux
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, d
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formToken fetches a page and returns its CSRF form field.
func formToken(t testing.TB, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on %s (status %d)", u, resp.StatusCode)
	}
	return string(m[1])
}

// postLogin submits the login form and returns the response (body read and closed).
func postLogin(t testing.TB, c *http.Client, base, user, pw string) (*http.Response, string) {
	t.Helper()
	tok := formToken(t, c, base+"/login")
	return postForm(t, c, base+"/login", url.Values{"csrf": {tok}, "username": {user}, "password": {pw}, "next": {""}})
}

func postForm(t testing.TB, c *http.Client, u string, v url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// login returns a logged-in client.
func login(t testing.TB, base string) *http.Client {
	t.Helper()
	c := browser(t)
	resp, body := postLogin(t, c, base, reviewer, reviewerPW)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d\n%s", resp.StatusCode, body)
	}
	return c
}

// getJSON fetches u and decodes it into v, failing unless the status is want.
func getJSON(t testing.TB, c *http.Client, u string, want int, v any) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d\n%s", u, resp.StatusCode, want, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", u, ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", u, err, body)
		}
	}
}

func get(t testing.TB, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var _ = fmt.Sprint
