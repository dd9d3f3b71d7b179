package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// credentialView shows a credential without its secret hash.
type credentialView struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	CreatedAt time.Time       `json:"created_at"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	JWK       json.RawMessage `json:"jwk,omitempty"` // the registered public key
}

type partnerView struct {
	ClientID     string   `json:"client_id"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	Actions      []string `json:"actions"`
	SubjectKinds []string `json:"subject_kinds"`
	// Visibility is set for role partner only.
	Visibility string `json:"visibility,omitempty"`
	RateLimit  string `json:"rate_limit,omitempty"`
	// Region is the partner's jurisdiction (role partner; absent: national
	// measures only).
	Region                  string           `json:"region,omitempty"`
	TokenEndpointAuthMethod string           `json:"token_endpoint_auth_method"`
	Credentials             []credentialView `json:"credentials"`
	Status                  string           `json:"status"`
	CreatedAt               time.Time        `json:"created_at"`
	UpdatedAt               time.Time        `json:"updated_at"`
	RevokedAt               *time.Time       `json:"revoked_at,omitempty"`
	Version                 int64            `json:"version"`
	// ClientSecret is shown once, in the answer that creates it.
	ClientSecret string `json:"client_secret,omitempty"`
}

func viewPartner(p service.Partner) partnerView {
	v := partnerView{ClientID: p.ClientID, Name: p.Name, Role: string(p.Role), Actions: p.Actions,
		SubjectKinds: make([]string, 0, len(p.SubjectKinds)), Visibility: string(p.Visibility), RateLimit: p.RateLimit, Region: p.Region,
		TokenEndpointAuthMethod: service.AuthMethod(p), Credentials: []credentialView{},
		Status: string(p.Status), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, RevokedAt: p.RevokedAt, Version: p.Version}
	if v.Actions == nil {
		v.Actions = []string{}
	}
	for _, k := range p.SubjectKinds {
		v.SubjectKinds = append(v.SubjectKinds, string(k))
	}
	for _, c := range service.CredentialsOf(p) {
		cv := credentialView{ID: c.ID, Kind: string(c.Kind), CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt}
		if c.JWK != "" {
			cv.JWK = json.RawMessage(c.JWK)
		}
		v.Credentials = append(v.Credentials, cv)
	}
	return v
}

// jwksInput is a JSON Web Key Set (RFC 7517 §5) of public keys.
type jwksInput struct {
	Keys []json.RawMessage `json:"keys"`
}

func (j *jwksInput) raw() [][]byte {
	if j == nil {
		return nil
	}
	out := make([][]byte, len(j.Keys))
	for i, k := range j.Keys {
		out[i] = k
	}
	return out
}

func (s *Server) createPartner(c *gin.Context) {
	var body struct {
		Name         string               `json:"name"`
		Role         string               `json:"role"`
		Actions      []string             `json:"actions"`
		SubjectKinds []policy.SubjectKind `json:"subject_kinds"`
		Visibility   string               `json:"visibility"`
		RateLimit    string               `json:"rate_limit"`
		Region       string               `json:"region"`
		JWKS         *jwksInput           `json:"jwks"`
	}
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		fail(c, err)
		return
	}
	if body.JWKS != nil && len(body.JWKS.Keys) == 0 {
		fail(c, problem(http.StatusBadRequest, "invalid_partner", "Invalid partner", "jwks has no keys"))
		return
	}
	p, secret, err := s.partners.Create(c.Request.Context(), service.NewPartnerInput{
		Name: body.Name, Role: service.Role(body.Role), Actions: body.Actions, SubjectKinds: body.SubjectKinds,
		Visibility: service.Visibility(body.Visibility), RateLimit: body.RateLimit, JWKS: body.JWKS.raw(),
		Region: body.Region,
	})
	if err != nil {
		fail(c, err)
		return
	}
	v := viewPartner(p)
	v.ClientSecret = secret
	c.Header("Cache-Control", "no-store")
	c.Header("Location", "/v1/admin/partners/"+p.ClientID)
	c.JSON(http.StatusCreated, v)
}

func (s *Server) listPartners(c *gin.Context) {
	limit, ok := queryLimit(c)
	if !ok {
		return
	}
	ps, err := s.partners.List(c.Request.Context(), c.Query("after"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]partnerView, len(ps))
	for i, p := range ps {
		out[i] = viewPartner(p)
	}
	c.JSON(http.StatusOK, listing("partners", out, ps, limit, func(p service.Partner) string { return p.ClientID }))
}

func (s *Server) getPartner(c *gin.Context) {
	p, err := s.partners.Get(c.Request.Context(), c.Param("client_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, viewPartner(p))
}

func (s *Server) patchPartner(c *gin.Context) {
	var body struct {
		Name         *string               `json:"name"`
		Actions      *[]string             `json:"actions"`
		SubjectKinds *[]policy.SubjectKind `json:"subject_kinds"`
		Visibility   *service.Visibility   `json:"visibility"`
		RateLimit    *string               `json:"rate_limit"`
		Region       *string               `json:"region"`
	}
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		fail(c, err)
		return
	}
	p, err := s.partners.Update(c.Request.Context(), c.Param("client_id"), service.PartnerPatch{
		Name: body.Name, Actions: body.Actions, SubjectKinds: body.SubjectKinds, Visibility: body.Visibility, RateLimit: body.RateLimit,
		Region: body.Region,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, viewPartner(p))
}

// partnerVerb serves POST /v1/admin/partners/{client_id}:revoke and
// :rotate.
func (s *Server) partnerVerb(c *gin.Context) {
	id, verb, _ := strings.Cut(c.Param("client_id"), ":")
	switch verb {
	case "revoke":
		p, err := s.partners.Revoke(c.Request.Context(), id)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, viewPartner(p))
	case "rotate":
		s.rotatePartner(c, id)
	default:
		fail(c, problem(http.StatusNotFound, "not_found", "Not found", "no such endpoint"))
	}
}

// rotatePartner replaces a partner's credentials. The body is optional:
// without it a new secret is issued and the old one works for a day.
func (s *Server) rotatePartner(c *gin.Context, clientID string) {
	var body struct {
		OverlapSeconds *int64     `json:"overlap_seconds"`
		JWKS           *jwksInput `json:"jwks"`
	}
	raw, err := io.ReadAll(c.Request.Body)
	if err != nil {
		fail(c, decodeProblem(err))
		return
	}
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := decodeJSON(strings.NewReader(string(raw)), &body); err != nil {
			fail(c, err)
			return
		}
	}
	overlap := service.DefaultOverlap
	if body.OverlapSeconds != nil {
		if *body.OverlapSeconds < 0 || *body.OverlapSeconds > int64(service.MaxOverlap/time.Second) {
			fail(c, problem(http.StatusBadRequest, "invalid_partner", "Invalid partner",
				"overlap_seconds must be 0.."+strconv.FormatInt(int64(service.MaxOverlap/time.Second), 10)))
			return
		}
		overlap = time.Duration(*body.OverlapSeconds) * time.Second
	}
	if body.JWKS != nil && len(body.JWKS.Keys) == 0 {
		fail(c, problem(http.StatusBadRequest, "invalid_partner", "Invalid partner", "jwks has no keys"))
		return
	}
	p, secret, err := s.partners.Rotate(c.Request.Context(), clientID, service.RotateInput{Overlap: overlap, JWKS: body.JWKS.raw()})
	if err != nil {
		fail(c, err)
		return
	}
	v := viewPartner(p)
	v.ClientSecret = secret
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, v)
}
