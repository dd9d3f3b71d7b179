package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Body limits of the console's forms: a form of fields, a pasted receipt;
// and the default limit of an import file uploaded through a browser
// (WithImportLimit). The API's import takes far larger files; the form
// says so and names `credgate import` for them.
const (
	MaxFormBody   = 64 << 10
	MaxImportBody = 64 << 20
)

// RecordReader reads the evidence log's records for the overview's
// statistics: the tree head, and records of a kind from an index on.
type RecordReader interface {
	service.ActReader
	TreeHead(ctx context.Context) (evidence.Head, error)
}

// HealthReader is what the overview shows of the server's health: what
// /readyz reports (gateway.Server.Health).
type HealthReader interface {
	Health(ctx context.Context) map[string]any
}

// Deps are the service-layer objects the console works through: the same
// ones the JSON API's handlers use.
type Deps struct {
	Checker   *service.Checker
	Entries   *service.Entries
	Lifecycle *service.Lifecycle
	Partners  *service.Partners
	Receipts  *service.Receipts
	Evidence  *evidence.Log
	Records   RecordReader
	// Health is optional: without it the overview shows no health panel.
	Health HealthReader
	// Checks is optional: without it the evidence page has no search of
	// checks (checksearch.go).
	Checks CheckSearcher
	// Deliveries is optional: without it the webhook deliveries page says
	// that this server does not deliver webhooks (deliveries.go).
	Deliveries DeliveryReader
	// Feedback is optional: without it the overdue feedback page says
	// that this server does not follow feedback up (overdue.go).
	Feedback OverdueReader
}

// Console serves the console's pages under /console/.
type Console struct {
	deps     Deps
	logger   *slog.Logger
	now      func() time.Time
	sessions *sessions
	throttle *throttle
	msgs     catalogues
	pages    map[string]*pageTemplate
	static   fs.FS
	zone     *time.Location
	// acts reads the administrative acts from deps.Records, as
	// GET /v1/admin/acts does (acts.go).
	acts *service.Acts

	idle, absolute time.Duration
	maxSessions    int
	importLimit    int64

	// origin is the caller's address and whether it came over HTTPS
	// (WithOrigin).
	origin func(*http.Request) (addr string, https bool)

	// The overview's statistics are read at most once per statsTTL: the
	// page is refreshed by people, not polled by machines, but several
	// may look at once.
	statsMu sync.Mutex
	stats   *overviewStats
}

// Option configures a Console.
type Option func(*Console)

// WithLogger sets the logger (default slog.Default()). The console logs
// client ids and outcomes of sign-ins, never secrets or ID numbers.
func WithLogger(l *slog.Logger) Option { return func(c *Console) { c.logger = l } }

// WithClock sets the clock of sessions and pages (tests).
func WithClock(now func() time.Time) Option { return func(c *Console) { c.now = now } }

// WithTimeouts sets the sessions' idle and absolute timeouts (defaults
// DefaultIdleTimeout and DefaultAbsoluteTimeout).
func WithTimeouts(idle, absolute time.Duration) Option {
	return func(c *Console) { c.idle, c.absolute = idle, absolute }
}

// WithImportLimit sets the largest import file the console takes
// (default MaxImportBody).
func WithImportLimit(n int64) Option { return func(c *Console) { c.importLimit = n } }

// WithMaxSessions bounds the sessions kept (default DefaultMaxSessions).
func WithMaxSessions(n int) Option { return func(c *Console) { c.maxSessions = n } }

// WithOrigin sets how the console learns the caller's address (which
// sign-in throttling keys on) and whether the caller reached it over
// HTTPS (which makes its cookies Secure). serve passes
// gateway.Server.RequestOrigin, so that behind a trusted reverse proxy
// the console believes X-Forwarded-For and X-Forwarded-Proto as the API
// does. By default it is the connection's peer and its TLS.
func WithOrigin(origin func(r *http.Request) (addr string, https bool)) Option {
	return func(c *Console) { c.origin = origin }
}

// peerOrigin is the origin without proxies: the TCP peer (its /64 for
// IPv6, as the gateway keys addresses, since one host commonly holds a
// whole /64) and its TLS.
func peerOrigin(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = ip.Mask(net.CIDRMask(64, 128)).String()
	}
	return host, r.TLS != nil
}

//go:embed static
var staticFS embed.FS

// chinaTime is how times are shown: the offices work in UTC+8.
var chinaTime = time.FixedZone("UTC+8", 8*3600)

// New builds the console over the service layer.
func New(deps Deps, opts ...Option) (*Console, error) {
	if deps.Checker == nil || deps.Entries == nil || deps.Lifecycle == nil || deps.Partners == nil ||
		deps.Receipts == nil || deps.Evidence == nil || deps.Records == nil {
		return nil, errors.New("console: every service dependency is required")
	}
	c := &Console{deps: deps, logger: slog.Default(), now: time.Now, zone: chinaTime,
		idle: DefaultIdleTimeout, absolute: DefaultAbsoluteTimeout, maxSessions: DefaultMaxSessions, origin: peerOrigin,
		importLimit: MaxImportBody}
	for _, o := range opts {
		o(c)
	}
	if c.origin == nil {
		return nil, errors.New("console: the origin function is required")
	}
	if c.idle <= 0 || c.absolute <= 0 || c.maxSessions <= 0 || c.importLimit <= 0 {
		return nil, errors.New("console: timeouts, the session bound and the import limit must be positive")
	}
	c.sessions = newSessions(c.idle, c.absolute, c.maxSessions)
	c.throttle = newThrottle()
	var err error
	if c.msgs, err = loadCatalogues(); err != nil {
		return nil, err
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if err = parseViewPages(c.pages); err != nil {
		return nil, err
	}
	c.acts = service.NewActs(deps.Records)
	c.static, _ = fs.Sub(staticFS, "static") // the directory is embedded
	return c, nil
}

// Mount serves the console at /console/ beside api, which serves the rest.
// The console is not a gin route: its pages are HTML forms, not the API's
// JSON, and the OpenAPI contract covers the API alone.
func Mount(api http.Handler, c *Console) http.Handler {
	h := c.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, cookiePath) {
			h.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// Handler returns the console's routes.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(c.static)))
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/language", c.setLanguage)
	mux.HandleFunc("GET /console/signin", c.signinForm)
	mux.HandleFunc("POST /console/signin", c.signin)
	mux.Handle("POST /console/signout", c.authed(false, c.signout))

	read := func(pattern string, h handler) { mux.Handle("GET "+pattern, c.authed(false, h)) }
	act := func(pattern string, h handler) { mux.Handle("POST "+pattern, c.authed(true, h)) }
	// search is a read whose question names a subject: sent by POST (with
	// the session's CSRF token), so that the ID number is in no address.
	search := func(pattern string, h handler) { mux.Handle("POST "+pattern, c.authed(false, h)) }

	read("/console/overview", c.overview)
	read("/console/subjects", c.subjectsForm)
	read("/console/entries", c.entryList)
	read("/console/entries/{id}", c.entryPage)
	read("/console/proceedings", c.proceedings)
	read("/console/partners", c.partnerList)
	read("/console/partners/{id}", c.partnerPage)
	read("/console/evidence", c.evidencePage)
	read("/console/evidence/receipts/{id}", c.receiptDownload)
	read("/console/acts", c.actsPage)
	read("/console/deliveries", c.deliveriesPage)
	read("/console/overdue", c.overduePage)

	search("/console/subjects", c.subjects)
	search("/console/entries/filter", c.filterEntries)

	act("/console/entries", c.createEntry)
	act("/console/entries/import", c.importEntries)
	act("/console/entries/{id}/revoke", c.revokeEntry)
	act("/console/entries/{id}/objections", c.fileObjection)
	act("/console/entries/{id}/repairs", c.applyRepair)
	act("/console/entries/{id}/exits", c.applyExit)
	act("/console/objections/{id}/decision", c.decideObjection)
	act("/console/repairs/{id}/review", c.reviewRepair)
	act("/console/repairs/{id}/decision", c.decideRepair)
	act("/console/exits/{id}/decision", c.decideExit)
	act("/console/partners", c.createPartner)
	act("/console/partners/{id}", c.updatePartner)
	act("/console/partners/{id}/rotate", c.rotatePartner)
	act("/console/partners/{id}/revoke", c.revokePartner)
	act("/console/deliveries/replay", c.replayDeliveries)

	// Any other path, or a known path with another method: a page in the
	// user's language, not the mux's text/plain.
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) { c.unrouted(mux, w, r) })

	return c.secure(mux)
}

// unrouted answers a request no route took: 405 with Allow when the path
// is a page with other methods, else 404.
func (c *Console) unrouted(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/console/" {
			allow = append(allow, m)
		}
	}
	status, key := http.StatusNotFound, "error.not_found"
	if len(allow) > 0 {
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		status, key = http.StatusMethodNotAllowed, "error.method"
	}
	c.refuse(w, r, c.current(r), status, key)
}

// once uses the one-time token of a form that makes what cannot be made
// twice (a partner, a secret). A form sent again answers that it was done
// and does nothing, with a way on to back; a token unknown (missing, or
// forgotten) asks for the form to be reloaded. It reports whether to go
// on.
func (c *Console) once(w http.ResponseWriter, r *http.Request, s *session, back string) bool {
	switch c.sessions.useNonce(s.id, r.PostFormValue("nonce")) {
	case nonceFresh:
		return true
	case nonceUsed:
		c.logger.Info("console form sent again: not done twice", "client_id", s.clientID, "path", r.URL.Path)
		c.refuseWithBack(w, r, s, http.StatusConflict, "error.already_done", back)
	default:
		c.refuseWithBack(w, r, s, http.StatusBadRequest, "error.form_expired", back)
	}
	return false
}

// secure adds the headers every console answer carries: nothing but the
// console's own scripts, styles and images, no framing, no referrer, no
// caching of pages that show entries or secrets, and a recoverer.
func (c *Console) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/console/static/") {
			h.Set("Cache-Control", "no-store")
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				c.logger.Error("panic in console", "path", r.URL.Path, "panic", fmt.Sprint(v))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// csrfHeader carries the session's CSRF token on the requests the
// console's script sends itself (an upload with its progress).
const csrfHeader = "X-CSRF-Token"

// maxTokenPart bounds what multipartToken reads of a body to find the
// token: the part boundary, its headers and the token, and what the
// multipart reader buffers past them.
const maxTokenPart = 8 << 10

// multipartToken reads the CSRF token from a multipart body's first part,
// where the console's upload form puts it (its hidden field comes before
// the file), then puts back what it read, so that the handler reads the
// body whole: an upload sent without the script's header is refused, or
// not, before its file is read. A body whose first part is not the token
// has none.
func multipartToken(r *http.Request) string {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return ""
	}
	body := r.Body
	var seen bytes.Buffer
	defer func() {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(seen.Bytes()), body), body}
	}()
	part, err := multipart.NewReader(io.TeeReader(io.LimitReader(body, maxTokenPart), &seen), params["boundary"]).NextPart()
	if err != nil || part.FormName() != "csrf" {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(part, 256))
	if err != nil {
		return ""
	}
	return string(b)
}

// handler is a console page or act for a signed-in user.
type handler func(w http.ResponseWriter, r *http.Request, s *session)

// authed requires a live session whose credential is still valid; for
// acts (POST) it also requires the session's CSRF token and the
// administrator's role, and makes the user the actor of what the request
// does, so that service records who did it, as for the API.
func (c *Console) authed(act bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.current(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
				return
			}
			c.refuse(w, r, nil, http.StatusUnauthorized, "error.signed_out")
			return
		}
		if r.Method == http.MethodPost {
			limit := int64(MaxFormBody)
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				limit = c.importLimit
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			// The token is in the form's body, or in the X-CSRF-Token
			// header that the console's script sends with an upload, so
			// that a refused upload is refused before its body is read.
			// Never in the address: addresses end up in proxies' and
			// servers' logs and in browsers' histories.
			token := r.Header.Get(csrfHeader)
			switch {
			case token != "":
			case strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data"):
				token = multipartToken(r)
			default:
				token = r.PostFormValue("csrf")
			}
			if !sameToken(token, s.csrf) {
				c.logger.Warn("console form refused: CSRF token missing or wrong", "client_id", s.clientID, "path", r.URL.Path)
				c.refuse(w, r, s, http.StatusForbidden, "error.csrf")
				return
			}
		}
		if err := plainRequest(r); err != nil {
			c.fail(w, r, s, err)
			return
		}
		if act && s.role != service.RoleAdmin {
			c.refuse(w, r, s, http.StatusForbidden, "error.role")
			return
		}
		ctx := service.WithActor(r.Context(), service.Actor{ClientID: s.clientID, Role: s.role})
		h(w, r.WithContext(ctx), s)
	})
}

// current returns the request's session if it is live and the credential
// that opened it is still valid: a revoked partner, a rotated-away secret
// or a changed role ends the session at its next request.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	now := c.now()
	s := c.sessions.get(ck.Value, now)
	if s == nil {
		return nil
	}
	p, err := c.deps.Partners.Active(r.Context(), s.clientID)
	if err != nil || p.Role != s.role || !service.CredentialValid(p, s.credID, now) {
		if err != nil && !errors.Is(err, service.ErrInvalidClient) && !errors.Is(err, service.ErrNotFound) {
			// The store is down: the session stays, the page fails.
			c.logger.Warn("console session check failed", "client_id", s.clientID, "err", err)
			return nil
		}
		c.sessions.end(s.id)
		return nil
	}
	return s
}

// caller is the session's user as the service layer sees a caller.
func (c *Console) caller(r *http.Request, s *session) (service.Caller, error) {
	p, err := c.deps.Partners.Active(r.Context(), s.clientID)
	if err != nil {
		return service.Caller{}, err
	}
	return service.CallerOf(p), nil
}

func (c *Console) setLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.URL.Query().Get("lang")
	if !validLanguage(lang) {
		lang = languages[0]
	}
	http.SetCookie(w, c.cookie(r, langCookie, lang, 365*24*3600))
	back := r.URL.Query().Get("back")
	// Only a path of the console itself: never an open redirect.
	if !strings.HasPrefix(back, cookiePath) || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		back = "/console/overview"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// plainRequest refuses a request whose path, query values or (urlencoded)
// form values are not text credgate stores: not UTF-8, or holding NUL (a
// path: not found, as the gateway answers such an id), and form text
// holding another control character (policy.ControlCharacter): PostgreSQL
// cannot store U+0000 and SQLite could, so the same form succeeded on one
// deployment and failed with a 500 on the other. Multipart files are the
// import's to read, line by line.
func plainRequest(r *http.Request) error {
	if !utf8.ValidString(r.URL.Path) || strings.ContainsRune(r.URL.Path, 0) {
		return fmt.Errorf("console path: %w", service.ErrNotFound)
	}
	for name, vs := range r.URL.Query() {
		for _, v := range append([]string{name}, vs...) {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				return invalidInput(plainField(name), errors.New("not valid UTF-8 or holds NUL"))
			}
		}
	}
	if r.Method != http.MethodPost {
		return nil
	}
	_ = r.ParseForm() // a body it cannot read is the handler's to refuse
	for name, vs := range r.PostForm {
		for _, v := range append([]string{name}, vs...) {
			if p := policy.TextProblem(v); p != "" {
				return invalidForm(plainField(name), errors.New("the value "+p))
			}
		}
	}
	return nil
}

// plainField is a form field's name fit to be shown back.
func plainField(name string) string {
	if policy.TextProblem(name) != "" {
		return "(a field name that is not text)"
	}
	return name
}
