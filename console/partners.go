package console

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

type partnersData struct {
	Partners []service.Partner
	Next     string
	Actions  []policy.Action
	Usage    map[string]int // checks among the overview's recent records
	Form     url.Values
	// Nonce is the create form's one-time token (once).
	Nonce string
}

func (c *Console) partnerList(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderPartners(w, r, s, http.StatusOK, nil, nil)
}

func (c *Console) renderPartners(w http.ResponseWriter, r *http.Request, s *session, status int, form url.Values, formErr error) {
	p := c.newPage(r, s, "partners")
	after := r.URL.Query().Get("after")
	if len(after) > maxFieldLen {
		c.fail(w, r, s, invalidInput("after", errFieldTooLong))
		return
	}
	ps, err := c.deps.Partners.List(r.Context(), after, entriesPage)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := &partnersData{Partners: ps, Actions: c.deps.Checker.Catalog().Actions(), Usage: map[string]int{}, Form: form}
	if s.role == service.RoleAdmin {
		d.Nonce = c.sessions.issueNonce(s.id)
	}
	if d.Form == nil {
		d.Form = url.Values{}
	}
	if len(ps) == entriesPage {
		d.Next = ps[len(ps)-1].ClientID
	}
	if st, err := c.recentStats(r.Context()); err == nil {
		for _, u := range st.Partners {
			d.Usage[u.Name] = u.Count
		}
	}
	if formErr != nil {
		p.Error = c.problem(p.Lang, formErr)
	}
	p.Data = d
	c.render(w, status, "partners", p)
}

// partnerInput reads the fields a partner's create and update forms
// share.
type partnerFields struct {
	Name, Visibility, RateLimit, Region string
	Actions                             []string
	SubjectKinds                        []policy.SubjectKind
}

func readPartnerFields(r *http.Request) (partnerFields, error) {
	var f partnerFields
	var err error
	for _, x := range []struct {
		name string
		dst  *string
	}{{"name", &f.Name}, {"visibility", &f.Visibility}, {"rate_limit", &f.RateLimit}, {"region", &f.Region}} {
		if *x.dst, err = formField(r, x.name); err != nil {
			return f, err
		}
	}
	if len(r.PostForm["actions"]) > service.MaxActions {
		return f, invalidForm("actions", errFieldTooLong)
	}
	f.Actions = r.PostForm["actions"]
	for _, k := range r.PostForm["subject_kinds"] {
		f.SubjectKinds = append(f.SubjectKinds, policy.SubjectKind(k))
	}
	return f, nil
}

// createPartner is POST /v1/admin/partners from a form; the new secret is
// shown once, on the page this answers, and never again. The form is
// taken once (its nonce): sent again, it makes no second partner.
func (c *Console) createPartner(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.once(w, r, s, "/console/partners") {
		return
	}
	f, err := readPartnerFields(r)
	if err == nil {
		var (
			pt     service.Partner
			secret string
		)
		pt, secret, err = c.deps.Partners.Create(r.Context(), service.NewPartnerInput{Name: f.Name, Role: service.Role(r.PostFormValue("role")),
			Actions: f.Actions, SubjectKinds: f.SubjectKinds, Visibility: service.Visibility(f.Visibility), RateLimit: f.RateLimit, Region: f.Region})
		if err == nil {
			c.renderPartner(w, r, s, pt, secret, "created", nil)
			return
		}
	}
	c.renderPartners(w, r, s, gateway.ProblemFor(err).Status, r.PostForm, err)
}

type partnerData struct {
	Partner     service.Partner
	Credentials []service.Credential
	Secret      string
	Actions     []policy.Action
	Now         time.Time
	MaxOverlapH int
	// KeyPartner: the partner signs with its keys (private_key_jwt); the
	// console does not rotate it to a secret, and names the API's
	// endpoint (RotateAPI) where its keys are rotated.
	KeyPartner bool
	RotateAPI  string
	// Nonce is the rotation form's one-time token (once).
	Nonce string
}

// Has reports whether the partner may check action (for the form).
func (d *partnerData) Has(action string) bool {
	for _, a := range d.Partner.Actions {
		if a == action {
			return true
		}
	}
	return false
}

// HasKind reports whether the partner's scope names the subject kind.
func (d *partnerData) HasKind(kind string) bool {
	for _, k := range d.Partner.SubjectKinds {
		if string(k) == kind {
			return true
		}
	}
	return false
}

func (c *Console) partnerPage(w http.ResponseWriter, r *http.Request, s *session) {
	pt, err := c.deps.Partners.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.renderPartner(w, r, s, pt, "", r.URL.Query().Get("done"), nil)
}

func (c *Console) renderPartner(w http.ResponseWriter, r *http.Request, s *session, pt service.Partner, secret, done string, actErr error) {
	p := c.newPage(r, s, "partners")
	d := &partnerData{Partner: pt, Credentials: service.CredentialsOf(pt), Secret: secret, Actions: c.deps.Checker.Catalog().Actions(),
		Now: c.now(), MaxOverlapH: int(service.MaxOverlap / time.Hour), KeyPartner: keyPartner(pt),
		RotateAPI: "POST /v1/admin/partners/" + pt.ClientID + ":rotate"}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		p.Path = "/console/partners/" + url.PathEscape(pt.ClientID)
	}
	if s.role == service.RoleAdmin && !d.KeyPartner {
		d.Nonce = c.sessions.issueNonce(s.id)
	}
	if done != "" {
		p.Notice = p.notice("partner_" + done)
	}
	status := http.StatusOK
	if secret != "" {
		// The secret is in this answer only: nothing may keep it.
		w.Header().Set("Cache-Control", "no-store")
		status = http.StatusCreated
	}
	if actErr != nil {
		p.Error = c.problem(p.Lang, actErr)
		status = p.Error.Status
	}
	p.Data = d
	c.render(w, status, "partner", p)
}

func (c *Console) partnerActed(w http.ResponseWriter, r *http.Request, s *session, done string, err error) {
	if err == nil {
		http.Redirect(w, r, "/console/partners/"+url.PathEscape(r.PathValue("id"))+"?done="+done, http.StatusSeeOther)
		return
	}
	pt, gerr := c.deps.Partners.Get(r.Context(), r.PathValue("id"))
	if gerr != nil {
		c.fail(w, r, s, err)
		return
	}
	c.renderPartner(w, r, s, pt, "", "", err)
}

// updatePartner is PATCH /v1/admin/partners/{id} from a form: name,
// actions, subject kinds, visibility, quota and region.
func (c *Console) updatePartner(w http.ResponseWriter, r *http.Request, s *session) {
	f, err := readPartnerFields(r)
	if err == nil {
		vis := service.Visibility(f.Visibility)
		patch := service.PartnerPatch{Name: &f.Name, Actions: &f.Actions, SubjectKinds: &f.SubjectKinds, Visibility: &vis,
			RateLimit: &f.RateLimit, Region: &f.Region}
		if f.Actions == nil {
			patch.Actions = &[]string{}
		}
		if f.SubjectKinds == nil {
			patch.SubjectKinds = &[]policy.SubjectKind{}
		}
		_, err = c.deps.Partners.Update(r.Context(), r.PathValue("id"), patch)
	}
	c.partnerActed(w, r, s, "updated", err)
}

// keyPartner reports whether the partner authenticates with its keys.
func keyPartner(p service.Partner) bool { return service.AuthMethod(p) == service.AuthMethodPrivateKey }

// rotatePartner is POST /v1/admin/partners/{id}:rotate with an overlap in
// hours; the new secret is shown once. A partner that signs with its keys
// is refused: a rotation here would give it a secret and end its keys,
// silently changing how it authenticates; its keys are rotated through
// the API with its new public keys. The form is taken once (its nonce):
// sent again, it does not end the secret the first made at once.
func (c *Console) rotatePartner(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	pt, err := c.deps.Partners.Get(r.Context(), id)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	back := "/console/partners/" + url.PathEscape(id)
	if keyPartner(pt) {
		c.refuseWithBack(w, r, s, http.StatusConflict, "error.key_partner_rotation", back, "POST /v1/admin/partners/"+id+":rotate")
		return
	}
	if !c.once(w, r, s, back) {
		return
	}
	overlap := service.DefaultOverlap
	if v, err := formField(r, "overlap_hours"); err != nil || v != "" {
		h, perr := strconv.Atoi(v)
		if err != nil || perr != nil || h < 0 || time.Duration(h)*time.Hour > service.MaxOverlap {
			c.partnerActed(w, r, s, "", invalidForm("overlap_hours", errOverlap))
			return
		}
		overlap = time.Duration(h) * time.Hour
	}
	pt, secret, err := c.deps.Partners.Rotate(r.Context(), id, service.RotateInput{Overlap: overlap})
	if err != nil {
		c.partnerActed(w, r, s, "", err)
		return
	}
	c.renderPartner(w, r, s, pt, secret, "rotated", nil)
}

func (c *Console) revokePartner(w http.ResponseWriter, r *http.Request, s *session) {
	_, err := c.deps.Partners.Revoke(r.Context(), r.PathValue("id"))
	c.partnerActed(w, r, s, "revoked", err)
}
