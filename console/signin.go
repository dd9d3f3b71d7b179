package console

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Sign-in throttling: after maxAddrFailures failed sign-ins from one
// address, or maxIDFailures for one client id, within failureWindow,
// further attempts are refused until the window ends, so that a secret
// cannot be guessed through the console faster than through the token
// endpoint. The address is the caller's as the gateway believes it
// (WithOrigin): behind a proxy, the forwarded one, else every user would
// share the proxy's allowance. An id's allowance is six times an
// address's (as the API's, gateway.DefaultAuthFailuresPerClient against
// PerAddress), so that one address cannot lock an administrator out:
// that takes several.
const (
	maxAddrFailures = 10
	maxIDFailures   = 6 * maxAddrFailures
	failureWindow   = 5 * time.Minute
	// maxThrottled bounds the keys remembered; past it the oldest windows
	// are forgotten first.
	maxThrottled = 10_000
)

type failures struct {
	count int
	since time.Time
}

type throttle struct {
	mu   sync.Mutex
	keys map[string]*failures
}

func newThrottle() *throttle { return &throttle{keys: map[string]*failures{}} }

// throttleKeys are the keys one sign-in counts against: its address, and
// its client id when it could name a partner. An id longer than any
// partner's (or empty) names nobody, so it is not kept: a stranger's
// 60,000-character ids must not become map keys.
func throttleKeys(addr, id string) []string {
	keys := []string{"addr:" + addr}
	if id != "" && len(id) <= service.MaxClientIDLen {
		keys = append(keys, "id:"+id)
	}
	return keys
}

func limitOf(key string) int {
	if strings.HasPrefix(key, "id:") {
		return maxIDFailures
	}
	return maxAddrFailures
}

// hold is a sign-in's unit of the allowances of its keys, taken before
// its secret is verified (admit): kept when the secret is wrong, given
// back otherwise.
type hold struct {
	t    *throttle
	keys []string
	// since are the windows the units were taken from, by key.
	since []time.Time
}

// admit takes one unit of each key's allowance before the secret is
// verified, and refuses (taking nothing) when any is used up. A unit taken
// before the check, rather than a failure counted after it, is what stops
// guessing: counted after, every sign-in of a burst passed the check while
// the others were still being verified (as on the token endpoint, where
// 200 simultaneous guesses got 108 verified against an allowance of 10).
// The price is that an address has at most its allowance of sign-ins in
// flight at once. Past the allowance a correct secret is refused too until
// the window ends: otherwise the throttle would only slow guessing down.
func (t *throttle) admit(now time.Time, keys ...string) (*hold, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if f := t.keys[k]; f != nil && now.Sub(f.since) < failureWindow && f.count >= limitOf(k) {
			return nil, false
		}
	}
	if len(t.keys) >= maxThrottled {
		for k, f := range t.keys {
			if now.Sub(f.since) >= failureWindow {
				delete(t.keys, k)
			}
		}
		for k := range t.keys { // still full: forget an arbitrary one
			if len(t.keys) < maxThrottled {
				break
			}
			delete(t.keys, k)
		}
	}
	h := &hold{t: t, keys: keys}
	for _, k := range keys {
		f := t.keys[k]
		if f == nil || now.Sub(f.since) >= failureWindow {
			f = &failures{since: now}
			t.keys[k] = f
		}
		f.count++
		h.since = append(h.since, f.since)
	}
	return h, true
}

// release gives back the units of a sign-in that did not fail, to the
// windows they were taken from only: a unit given back to a later window
// would be an extra guess there.
func (h *hold) release() {
	h.t.mu.Lock()
	defer h.t.mu.Unlock()
	for i, k := range h.keys {
		if f := h.t.keys[k]; f != nil && f.since.Equal(h.since[i]) && f.count > 0 {
			f.count--
		}
	}
	h.keys = nil
}

type signinData struct {
	ClientID string
	Token    string
}

// signinForm shows the sign-in form with a fresh double-submit token.
func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	if c.current(r) != nil {
		http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
		return
	}
	c.renderSignin(w, r, http.StatusOK, "", "")
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, clientID, errKey string) {
	token := randomToken()
	http.SetCookie(w, c.cookie(r, signinCookie, token, 3600))
	p := c.newPage(r, nil, "signin")
	if errKey != "" {
		p.Error = &problemView{Title: c.msgs.text(p.Lang, errKey)}
	}
	p.Data = signinData{ClientID: clientID, Token: token}
	c.render(w, status, "signin", p)
}

// signin turns an administrator's or auditor's client credential into a
// session. A partner's credential is refused: partners call the API.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBody)
	ck, err := r.Cookie(signinCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), ck.Value) {
		c.refuse(w, r, nil, http.StatusForbidden, "error.csrf")
		return
	}
	id := strings.TrimSpace(r.PostFormValue("client_id"))
	secret := r.PostFormValue("client_secret")
	now := c.now()
	addr, _ := c.origin(r)
	keys := throttleKeys(addr, id)
	// The sign-in holds a unit of its address's and id's allowances of
	// failures while its secret is verified; it keeps it only if the
	// credentials are wrong (not on success, a partner's credential, or a
	// server error).
	held, ok := c.throttle.admit(now, keys...)
	if !ok {
		c.renderSignin(w, r, http.StatusTooManyRequests, id, "signin.throttled")
		return
	}
	failed := false
	defer func() {
		if !failed {
			held.release()
		}
	}()
	// An id that is not UTF-8 or holds a control character names no
	// client: a failed sign-in, counted, never sent to the store (which on
	// PostgreSQL would fail on NUL with a 500).
	if id == "" || secret == "" || len(id) > service.MaxClientIDLen || len(secret) > 512 || policy.TextProblem(id) != "" {
		failed = true
		c.renderSignin(w, r, http.StatusUnauthorized, "", "signin.invalid")
		return
	}
	p, credID, err := c.deps.Partners.Authenticate(r.Context(), id, secret)
	if errors.Is(err, service.ErrInvalidClient) {
		failed = true
		c.logger.Warn("console sign-in failed", "client_id", service.LoggableClientID(id, err), "remote", addr)
		c.renderSignin(w, r, http.StatusUnauthorized, "", "signin.invalid")
		return
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	if p.Role != service.RoleAdmin && p.Role != service.RoleAuditor {
		c.logger.Warn("console sign-in refused: not an administrator or auditor", "client_id", p.ClientID, "role", string(p.Role))
		c.renderSignin(w, r, http.StatusForbidden, "", "signin.partner")
		return
	}
	s := c.sessions.start(p, credID, now)
	c.logger.Info("console sign-in", "client_id", p.ClientID, "role", string(p.Role), "credential", credID)
	http.SetCookie(w, c.cookie(r, signinCookie, "", -1))
	http.SetCookie(w, c.cookie(r, sessionCookie, s.id, int(c.absolute/time.Second)))
	http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s.id)
	c.logger.Info("console sign-out", "client_id", s.clientID)
	http.SetCookie(w, c.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
