package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/credgate/credgate/service"
)

// Session defaults: an office workstation left alone for a quarter of an
// hour signs out; nobody stays signed in past a working day.
const (
	DefaultIdleTimeout     = 15 * time.Minute
	DefaultAbsoluteTimeout = 8 * time.Hour
	// DefaultMaxSessions bounds the sessions one process keeps, so that a
	// flood of sign-ins cannot grow memory without end; the oldest go
	// first.
	DefaultMaxSessions = 10_000
)

const (
	sessionCookie = "credgate_console"
	// signinCookie carries the sign-in form's CSRF token before there is a
	// session (double submit): a site cannot sign a browser in to an
	// account of the attacker's choosing.
	signinCookie = "credgate_console_signin"
	langCookie   = "credgate_console_lang"
	cookiePath   = "/console/"
)

// session is one signed-in administrator or auditor.
type session struct {
	id       string
	csrf     string
	clientID string
	credID   string
	name     string
	role     service.Role
	created  time.Time
	lastSeen time.Time
	// nonces are the one-time tokens of the forms that make something
	// that cannot be made twice (a partner, a secret): true once used.
	// Held by sessions and read and written under its lock only.
	nonces     map[string]bool
	nonceOrder []string
}

// maxNonces bounds the one-time form tokens a session keeps: forms opened
// in a working day's tabs; the oldest are forgotten first (a form that old
// is refused, to be reloaded).
const maxNonces = 64

// nonceState is what a submitted one-time token was.
type nonceState int

const (
	nonceUnknown nonceState = iota // missing, never issued or forgotten
	nonceFresh                     // issued and now used
	nonceUsed                      // used before: the form was sent again
)

// sessions keeps the sessions of this process. They are not shared
// between replicas: behind a load balancer the console needs sticky
// sessions (docs/ARCHITECTURE.md).
type sessions struct {
	mu       sync.Mutex
	byID     map[string]*session
	idle     time.Duration
	absolute time.Duration
	max      int
}

func newSessions(idle, absolute time.Duration, maxSessions int) *sessions {
	return &sessions{byID: map[string]*session{}, idle: idle, absolute: absolute, max: maxSessions}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// start makes a session for a verified credential.
func (s *sessions) start(p service.Partner, credID string, now time.Time) *session {
	ss := &session{id: randomToken(), csrf: randomToken(), clientID: p.ClientID, credID: credID, name: p.Name,
		role: p.Role, created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	for len(s.byID) >= s.max {
		var oldest *session
		for _, o := range s.byID {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(s.byID, oldest.id)
	}
	s.byID[ss.id] = ss
	return ss
}

// expire drops the sessions past a timeout; s.mu is held.
func (s *sessions) expire(now time.Time) {
	for id, ss := range s.byID {
		if s.ended(ss, now) {
			delete(s.byID, id)
		}
	}
}

func (s *sessions) ended(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) >= s.idle || now.Sub(ss.created) >= s.absolute
}

// get returns the live session with this id and marks it used, or nil.
// A session past a timeout is dropped.
func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil {
		return nil
	}
	if s.ended(ss, now) {
		delete(s.byID, id)
		return nil
	}
	ss.lastSeen = now
	cp := *ss
	return &cp
}

// issueNonce makes a one-time token for a form of session id ("" when
// the session is gone).
func (s *sessions) issueNonce(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil {
		return ""
	}
	if ss.nonces == nil {
		ss.nonces = map[string]bool{}
	}
	for len(ss.nonceOrder) >= maxNonces {
		delete(ss.nonces, ss.nonceOrder[0])
		ss.nonceOrder = ss.nonceOrder[1:]
	}
	n := randomToken()
	ss.nonces[n] = false
	ss.nonceOrder = append(ss.nonceOrder, n)
	return n
}

// useNonce uses a form's one-time token: of two requests sending the same
// token (a double click, a reload of the page a POST answered), exactly
// one gets nonceFresh, whatever their timing.
func (s *sessions) useNonce(id, nonce string) nonceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil || nonce == "" {
		return nonceUnknown
	}
	used, ok := ss.nonces[nonce]
	switch {
	case !ok:
		return nonceUnknown
	case used:
		return nonceUsed
	}
	ss.nonces[nonce] = true
	return nonceFresh
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// sameToken compares a submitted token with the expected one in constant
// time; an empty expected token matches nothing.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// cookie is a console cookie: HttpOnly, SameSite=Strict, scoped to the
// console's path, and Secure when the caller reached credgate over HTTPS,
// directly or through a trusted proxy that terminated TLS (WithOrigin):
// in production TLS ends at the proxy, so the connection's own r.TLS is
// never set.
func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	_, https := c.origin(r)
	return &http.Cookie{Name: name, Value: value, Path: cookiePath, MaxAge: maxAge, HttpOnly: true,
		Secure: https, SameSite: http.SameSiteStrictMode}
}
