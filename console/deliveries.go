package console

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/credgate/credgate/service"
)

// DeliveryReader is what the deliveries page reads and does: the
// delivery log (GET /v1/admin/deliveries) and the replay of dead letters
// (POST /v1/admin/deliveries/replay). service.Deliverer is it.
type DeliveryReader interface {
	Deliveries(ctx context.Context, caller service.Caller, f service.DeliveryFilter) ([]service.Delivery, error)
	Replay(ctx context.Context, partner string, eventIDs []string) ([]string, error)
}

// deliveryStates are the states the filter offers.
var deliveryStates = []string{service.DeliveryPending, service.DeliveryDelivered, service.DeliveryDead, service.DeliverySkipped}

var (
	errReplayPartner = errors.New("choose the partner whose dead letters to replay")
	errReplayNone    = errors.New("tick the dead letters to replay, or replay them all")
)

type deliveriesData struct {
	Available      bool
	Partner, State string
	States         []string
	Deliveries     []service.Delivery
	Next           template.URL // the address of the next page; "" when none
	Paged          bool
	// Dead: the page lists dead letters of one partner, which an
	// administrator may replay (Nonce is the replay form's one-time
	// token).
	Dead  bool
	Nonce string
}

// deliveriesPage lists webhook deliveries, of one partner or all, in one
// state or all, as GET /v1/admin/deliveries does: why a partner's webhook
// fails (the receiver's last status and error, the attempts, when it is
// tried next) and its dead letters, which an administrator replays.
func (c *Console) deliveriesPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderDeliveries(w, r, s, http.StatusOK, nil)
}

func (c *Console) renderDeliveries(w http.ResponseWriter, r *http.Request, s *session, status int, actErr error) {
	p := c.newPage(r, s, "deliveries")
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = url.Values{"partner": {r.PostFormValue("partner")}, "state": {service.DeliveryDead}}
		p.Path = "/console/deliveries?" + q.Encode()
	}
	d := &deliveriesData{Available: c.deps.Deliveries != nil, Partner: strings.TrimSpace(q.Get("partner")),
		State: q.Get("state"), States: deliveryStates}
	p.Data = d
	p.Notice = p.notice(q.Get("done"))
	fail := func(err error) {
		p.Error = c.problem(p.Lang, err)
		c.render(w, p.Error.Status, "deliveries", p)
	}
	if !d.Available {
		c.render(w, status, "deliveries", p)
		return
	}
	for name, v := range map[string]string{"partner": d.Partner, "after": q.Get("after")} {
		if len(v) > maxFieldLen {
			fail(invalidInput(name, errFieldTooLong))
			return
		}
	}
	after, err := service.ParseCursor(q.Get("after"))
	if err != nil {
		fail(invalidInput("after", err))
		return
	}
	d.Paged = q.Get("after") != ""
	caller, err := c.caller(r, s)
	if err != nil {
		fail(err)
		return
	}
	ds, err := c.deps.Deliveries.Deliveries(readContext(r), caller,
		service.DeliveryFilter{Partner: d.Partner, State: d.State, After: after, Limit: viewPage})
	if err != nil {
		fail(err)
		return
	}
	d.Deliveries = ds
	if len(ds) == viewPage {
		d.Next = nextPage("/console/deliveries", url.Values{"partner": {d.Partner}, "state": {d.State},
			"after": {strconv.FormatInt(ds[len(ds)-1].Event.Seq, 10)}})
	}
	for _, dl := range ds {
		if dl.State == service.DeliveryDead {
			d.Dead = true
		}
	}
	d.Dead = d.Dead && d.Partner != ""
	if d.Dead && s.role == service.RoleAdmin {
		d.Nonce = c.sessions.issueNonce(s.id)
	}
	if actErr != nil {
		p.Error = c.problem(p.Lang, actErr)
		status = p.Error.Status
	}
	c.render(w, status, "deliveries", p)
}

// replayDeliveries is POST /v1/admin/deliveries/replay from the page's
// form: the partner's dead letters ticked (event_ids), or all of them
// (all=1), pending again and due now. The form is taken once: sent again,
// it does not replay twice.
func (c *Console) replayDeliveries(w http.ResponseWriter, r *http.Request, s *session) {
	partner, err := formField(r, "partner")
	back := "/console/deliveries?" + url.Values{"partner": {partner}, "state": {service.DeliveryDead}}.Encode()
	if err != nil {
		c.renderDeliveries(w, r, s, http.StatusBadRequest, err)
		return
	}
	if c.deps.Deliveries == nil {
		c.fail(w, r, s, service.ErrEventsUnavailable)
		return
	}
	if !c.once(w, r, s, back) {
		return
	}
	ids := r.PostForm["event_ids"]
	if r.PostFormValue("all") == "1" {
		ids = nil // every dead letter of the partner, as the API's replay without event_ids
	}
	switch {
	case partner == "":
		err = invalidForm("partner", errReplayPartner)
	case len(ids) > service.MaxPage:
		err = invalidForm("event_ids", errFieldTooLong)
	case len(ids) == 0 && r.PostFormValue("all") != "1":
		err = invalidForm("event_ids", errReplayNone)
	}
	for _, id := range ids {
		if len(id) > maxFieldLen {
			err = invalidForm("event_ids", errFieldTooLong)
		}
	}
	if err == nil {
		_, err = c.deps.Deliveries.Replay(r.Context(), partner, ids)
	}
	if err != nil {
		c.renderDeliveries(w, r, s, http.StatusBadRequest, err)
		return
	}
	http.Redirect(w, r, "/console/deliveries?"+url.Values{"partner": {partner}, "done": {"deliveries_replayed"}}.Encode(),
		http.StatusSeeOther)
}
