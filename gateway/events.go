package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/service"
)

// Push endpoints: the pull feed of events (long-poll), a partner's
// webhook and its delivery log, watchlist uploads, the administrators'
// view and replay of deliveries, and the published webhook key.

// MaxWatchlistBody caps one watchlist part (MaxWatchlistBatch lines).
const MaxWatchlistBody = 8 << 20

// WebhookKeysPath is where the webhook verification keys are published.
const WebhookKeysPath = "/.well-known/credgate-webhook-keys.json"

// watchlistPath is the route of watchlist uploads (a text body, not JSON).
const watchlistPath = "/v1/watchlist"

// pushAPI holds the push services; nil fields answer 503.
type pushAPI struct {
	events      *service.Events
	watchlists  *service.Watchlists
	deliverer   *service.Deliverer
	departments *service.Departments
}

// WithPush serves the event feed, watchlists and webhooks.
func WithPush(events *service.Events, watchlists *service.Watchlists, deliverer *service.Deliverer) Option {
	return func(s *Server) {
		var d *service.Departments
		if s.push != nil {
			d = s.push.departments
		}
		s.push = &pushAPI{events: events, watchlists: watchlists, deliverer: deliverer, departments: d}
	}
}

// WithDepartments serves departments' subscriptions by measure authority
// (GET and PUT /v1/admin/partners/{client_id}/authorities).
func WithDepartments(d *service.Departments) Option {
	return func(s *Server) {
		if s.push == nil {
			s.push = &pushAPI{}
		}
		s.push.departments = d
	}
}

// mountPush mounts the routes whether or not WithPush was given, so that
// the route table is the same in every configuration.
func (s *Server) mountPush(r *gin.Engine, authed, admin, audit *gin.RouterGroup) {
	r.GET(WebhookKeysPath, s.needPush, s.webhookKeys)
	own := authed.Group("", s.needPush, s.asActor)
	own.GET("/events", s.eventFeed)
	own.GET("/webhook", s.getWebhook)
	// Subscribing is not for auditors, who are read-only: a watchlist or
	// a webhook would have events made and sent for them. Removing the
	// webhook stays open to every role, for one set before this rule.
	subscribe := require(service.RolePartner, service.RoleAdmin)
	own.PUT("/webhook", subscribe, limitBody(MaxJSONBody), s.putWebhook)
	own.DELETE("/webhook", s.deleteWebhook)
	own.GET("/webhook/deliveries", s.listDeliveries)
	own.GET("/watchlist", s.watchlistSize)
	own.POST("/watchlist", subscribe, limitBody(MaxWatchlistBody), s.uploadWatchlist)
	audit.GET("/deliveries", s.needPush, s.listDeliveries)
	admin.POST("/deliveries/replay", limitBody(MaxJSONBody), s.needPush, s.replayDeliveries)
	audit.GET("/partners/:client_id/authorities", s.needDepartments, s.getAuthorities)
	admin.PUT("/partners/:client_id/authorities", limitBody(MaxJSONBody), s.needDepartments, s.putAuthorities)
}

func (s *Server) needDepartments(c *gin.Context) {
	if s.push == nil || s.push.departments == nil || s.push.events == nil {
		fail(c, service.ErrEventsUnavailable)
		return
	}
	c.Next()
}

// getAuthorities serves a partner's subscription by measure authority.
func (s *Server) getAuthorities(c *gin.Context) {
	sub, err := s.push.departments.Get(c.Request.Context(), c.Param("client_id"))
	if err != nil {
		fail(c, partnerNotFound(err))
		return
	}
	c.JSON(http.StatusOK, sub)
}

// putAuthorities replaces a partner's subscription by measure authority
// ({"authorities": [...]}, spelled as the catalogue spells them; [] ends
// it).
func (s *Server) putAuthorities(c *gin.Context) {
	var in struct {
		Authorities []string `json:"authorities"`
	}
	if err := decodeJSON(c.Request.Body, &in); err != nil {
		fail(c, err)
		return
	}
	if in.Authorities == nil {
		pr := problem(http.StatusUnprocessableEntity, "invalid_subscription", "Invalid subscription",
			"authorities is required: the measure authorities to follow, [] for none")
		pr.Field = "authorities"
		fail(c, pr)
		return
	}
	sub, err := s.push.departments.Set(c.Request.Context(), c.Param("client_id"), in.Authorities)
	if err != nil {
		fail(c, partnerNotFound(err))
		return
	}
	c.JSON(http.StatusOK, sub)
}

// partnerNotFound names the partner in a not-found answer.
func partnerNotFound(err error) error {
	if errors.Is(err, service.ErrNotFound) {
		return problem(http.StatusNotFound, "not_found", "Not found", "no partner with this client id")
	}
	return err
}

func (s *Server) needPush(c *gin.Context) {
	if s.push == nil || s.push.events == nil || s.push.watchlists == nil || s.push.deliverer == nil {
		fail(c, service.ErrEventsUnavailable)
		return
	}
	c.Next()
}

func (s *Server) webhookKeys(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/jwk-set+json", s.push.deliverer.Signer().JWKS())
}

// queryInt reads an optional integer query parameter in [lo, hi].
func queryInt(c *gin.Context, name string, def, lo, hi int) (int, bool) {
	v := c.Query(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		pr := problem(http.StatusBadRequest, "invalid_query", "Invalid query",
			name+" must be "+strconv.Itoa(lo)+".."+strconv.Itoa(hi))
		pr.Field = name
		fail(c, pr)
		return 0, false
	}
	return n, true
}

// eventFeed serves GET /v1/events?after=&limit=&wait=: the caller's
// events after the cursor (from the oldest kept without one), waiting up
// to wait seconds for the first when there is none yet.
func (s *Server) eventFeed(c *gin.Context) {
	limit, ok := queryInt(c, "limit", 100, 1, service.MaxEventPage)
	if !ok {
		return
	}
	wait, ok := queryInt(c, "wait", 0, 0, int(service.MaxEventWait/time.Second))
	if !ok {
		return
	}
	page, err := s.push.events.Feed(c.Request.Context(), callerOf(c), c.Query("after"), limit, time.Duration(wait)*time.Second)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"events": page.Events, "next": page.Next})
}

// webhookView is a webhook as the API shows it.
type webhookView struct {
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// KeysURL is where the signing keys are published.
	KeysURL string `json:"keys_url"`
}

func viewWebhook(w service.Webhook) webhookView {
	return webhookView{URL: w.URL, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, KeysURL: WebhookKeysPath}
}

func (s *Server) getWebhook(c *gin.Context) {
	w, err := s.push.deliverer.Webhook(c.Request.Context(), callerOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, viewWebhook(w))
}

func (s *Server) putWebhook(c *gin.Context) {
	var in struct {
		URL string `json:"url"`
	}
	if err := decodeJSON(c.Request.Body, &in); err != nil {
		fail(c, err)
		return
	}
	w, err := s.push.deliverer.SetWebhook(c.Request.Context(), callerOf(c), in.URL)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, viewWebhook(w))
}

func (s *Server) deleteWebhook(c *gin.Context) {
	if err := s.push.deliverer.DeleteWebhook(c.Request.Context(), callerOf(c)); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// deliveryView is one delivery of the delivery log.
type deliveryView struct {
	EventID    string    `json:"event_id"`
	Cursor     string    `json:"cursor"`
	Partner    string    `json:"partner"`
	Kind       string    `json:"kind"`
	State      string    `json:"state"`
	Attempts   int       `json:"attempts"`
	NextAt     time.Time `json:"next_at"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// listDeliveries serves a partner's delivery log (GET /v1/webhook/
// deliveries) and the administrators' and auditors' view of every
// partner's (GET /v1/admin/deliveries?partner=).
func (s *Server) listDeliveries(c *gin.Context) {
	limit, ok := queryInt(c, "limit", 100, 1, service.MaxPage)
	if !ok {
		return
	}
	after, err := service.ParseCursor(c.Query("after"))
	if err != nil {
		fail(c, err)
		return
	}
	f := service.DeliveryFilter{Partner: c.Query("partner"), State: c.Query("state"), After: after, Limit: limit}
	ds, err := s.push.deliverer.Deliveries(readContext(c), callerOf(c), f)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]deliveryView, len(ds))
	for i, d := range ds {
		out[i] = deliveryView{EventID: d.Event.ID, Cursor: strconv.FormatInt(d.Event.Seq, 10), Partner: d.Event.Partner,
			Kind: string(d.Event.Kind), State: d.State, Attempts: d.Attempts, NextAt: d.NextAt, LastStatus: d.LastStatus,
			LastError: d.LastError, UpdatedAt: d.UpdatedAt}
	}
	c.JSON(http.StatusOK, listing("deliveries", out, out, limit, func(d deliveryView) string { return d.Cursor }))
}

func (s *Server) replayDeliveries(c *gin.Context) {
	var in struct {
		Partner  string   `json:"partner"`
		EventIDs []string `json:"event_ids,omitempty"`
	}
	if err := decodeJSON(c.Request.Body, &in); err != nil {
		fail(c, err)
		return
	}
	ids, err := s.push.deliverer.Replay(c.Request.Context(), in.Partner, in.EventIDs)
	if err != nil {
		fail(c, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	c.JSON(http.StatusOK, gin.H{"replayed": ids})
}

func (s *Server) watchlistSize(c *gin.Context) {
	n, err := s.push.watchlists.Size(c.Request.Context(), callerOf(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"size": n})
}

// uploadWatchlist serves POST /v1/watchlist?op=add|remove with a body of
// one subject per line (text/plain or text/csv).
func (s *Server) uploadWatchlist(c *gin.Context) {
	switch c.ContentType() {
	case "text/plain", "text/csv":
	default:
		fail(c, problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
			"send text/plain or text/csv, one subject per line"))
		return
	}
	op := c.DefaultQuery("op", service.WatchAdd)
	res, err := s.push.watchlists.Update(c.Request.Context(), callerOf(c), op, c.Request.Body)
	if err != nil {
		fail(c, streamError(err))
		return
	}
	c.JSON(http.StatusOK, res)
}
