package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/service"
)

// Context keys set by the middleware.
const (
	ctxRequestID = "credgate.request_id"
	ctxLogger    = "credgate.logger"
	// ctxIdentity is who the request is from (*identity).
	ctxIdentity = "credgate.identity"
)

// identity is who a request is from (identify) and what it took from its
// partner's quota (rateLimit): one allocation per request, where the
// caller and the partner boxed into the context and the charge were three.
type identity struct {
	caller  service.Caller
	partner service.Partner
	charge  quotaCharge
}

// identityOf is the request's identity, nil before authentication.
func identityOf(c *gin.Context) *identity {
	v, _ := c.Get(ctxIdentity)
	id, _ := v.(*identity)
	return id
}

// partnerOf is the authenticated partner, zero before authentication.
func partnerOf(c *gin.Context) service.Partner {
	if id := identityOf(c); id != nil {
		return id.partner
	}
	return service.Partner{}
}

// authenticate requires a valid bearer token of an active partner, issued
// for a credential that is still valid, and puts the caller in the
// context. Revocation and rotation take effect within the partner cache's
// TTL, even for unexpired tokens. It then refuses path and query
// parameters no store can look up (plainParams), for every authenticated
// route, before the rate limit charges for them and any handler reads them.
func (s *Server) authenticate(c *gin.Context) {
	if s.identify(c) {
		plainParams(c)
	}
}

// identify is authenticate without going on: it puts the caller in the
// context and reports true, or answers the problem and reports false.
func (s *Server) identify(c *gin.Context) bool {
	h := c.GetHeader("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(h, "bearer ")
	}
	if !ok || strings.TrimSpace(raw) == "" {
		fail(c, problem(http.StatusUnauthorized, "missing_token", "Missing bearer token",
			"send Authorization: Bearer <token> from POST /v1/oauth/token"))
		return false
	}
	claims, err := s.tokens.Verify(strings.TrimSpace(raw))
	if errors.Is(err, access.ErrTokenNotYetValid) {
		// Signed by credgate, stamped by a replica whose clock runs ahead of
		// this one's: neither forged nor the caller's fault, and operators
		// must hear of it.
		s.logger.WarnContext(c.Request.Context(), "access token not yet valid (clock skew between replicas)",
			"request_id", c.GetString(ctxRequestID), "err", err)
		fail(c, problem(http.StatusUnauthorized, "invalid_token", "Invalid token",
			"the token is not yet valid (clock skew): it was issued by a credgate server whose clock is ahead of this one's; retry in a few seconds"))
		return false
	}
	if err != nil {
		// ErrTokenExpired and ErrInvalidToken: problem.go tells them apart.
		fail(c, err)
		return false
	}
	p, err := s.partners.Active(c.Request.Context(), claims.Subject)
	if errors.Is(err, service.ErrInvalidClient) {
		fail(c, problem(http.StatusUnauthorized, "invalid_token", "Invalid token", "the credential behind this token is no longer active"))
		return false
	}
	if err != nil {
		fail(c, err)
		return false
	}
	if !service.CredentialValid(p, claims.Cred, s.tokens.Now()) || claims.Role != string(p.Role) {
		fail(c, problem(http.StatusUnauthorized, "invalid_token", "Invalid token", "the credential behind this token is no longer active"))
		return false
	}
	c.Set(ctxIdentity, &identity{caller: service.CallerOf(p), partner: p})
	return true
}

// asActor makes the caller the actor of the administrative acts its
// request performs, so that service records who did them.
func (s *Server) asActor(c *gin.Context) {
	caller := callerOf(c)
	c.Request = c.Request.WithContext(service.WithActor(c.Request.Context(), service.Actor{ClientID: caller.ClientID, Role: caller.Role}))
	c.Next()
}

// require allows only the given roles.
func require(roles ...service.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		caller := callerOf(c)
		for _, r := range roles {
			if caller.Role == r {
				c.Next()
				return
			}
		}
		fail(c, problem(http.StatusForbidden, "forbidden", "Forbidden", "this credential's role may not do this"))
	}
}

func callerOf(c *gin.Context) service.Caller {
	if id := identityOf(c); id != nil {
		return id.caller
	}
	return service.Caller{}
}

// token is the OAuth 2.0 client credentials grant (RFC 6749 §4.4). The
// client authenticates with its secret (HTTP Basic, or form fields) or
// with a signed client assertion (private_key_jwt, RFC 7523). Failed
// attempts are throttled per client and per address.
func (s *Server) token(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	oauthProblem := func(status int, code, title, detail string) {
		p := problem(status, code, title, detail)
		p.OAuthError = code
		fail(c, p)
	}
	if !strings.EqualFold(c.ContentType(), "application/x-www-form-urlencoded") {
		oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "send application/x-www-form-urlencoded")
		return
	}
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(c, decodeProblem(err))
			return
		}
		oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "malformed form")
		return
	}
	form := c.Request.PostForm
	for k, vs := range form {
		if len(vs) > 1 {
			// RFC 6749 §3.1: a parameter must not be sent more than once.
			oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "the parameter "+strconv.Quote(k)+" is given more than once")
			return
		}
	}
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		oauthProblem(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type", "grant_type must be client_credentials")
		return
	}
	if s.limits.throttled(c) {
		return
	}
	ctx := c.Request.Context()
	id, secret, basic := c.Request.BasicAuth()
	assertion := form.Get("client_assertion")
	if !basic {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if assertion != "" || form.Get("client_assertion_type") != "" {
		if basic || secret != "" {
			// RFC 6749 §2.3: one authentication method per request.
			oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "authenticate with a secret or an assertion, not both")
			return
		}
		if form.Get("client_assertion_type") != access.ClientAssertionType {
			oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "client_assertion_type must be "+access.ClientAssertionType)
			return
		}
		claimed, err := access.AssertionClientID(assertion)
		if err != nil || (id != "" && id != claimed) {
			s.limits.recordFailure(c)
			s.authFailed(c, id, nil, "malformed assertion")
			return
		}
		id = claimed
	} else if id == "" || secret == "" || len(id) > service.MaxClientIDLen || len(secret) > 512 {
		s.limits.recordFailure(c)
		s.authFailed(c, id, nil, "missing credentials")
		return
	}
	if !plainText(id) {
		// No partner's client id is anything but UTF-8 without NUL (and
		// PostgreSQL cannot even look one up): a wrong credential, counted
		// against the address like any other, never a store error.
		s.limits.recordFailure(c)
		s.authFailed(c, id, nil, "malformed client id")
		return
	}
	// The attempt holds a unit of its address's and client id's allowance
	// of failures while the credentials are verified; it keeps it only if
	// they are wrong.
	attempt, ok := s.limits.admitAuth(c, id)
	if !ok {
		return
	}
	failed := false
	defer func() {
		if !failed {
			attempt.release(ctx)
		}
	}()
	var (
		p      service.Partner
		credID string
		err    error
	)
	if assertion != "" {
		p, credID, err = s.verifyAssertion(ctx, id, assertion)
	} else {
		p, credID, err = s.partners.Authenticate(ctx, id, secret)
	}
	if errors.Is(err, access.ErrAssertionNotYetValid) {
		// Signed with the client's key, so not a guess: not counted, and
		// the client is told that its clock runs ahead.
		s.logger.WarnContext(ctx, "client authentication failed", "request_id", c.GetString(ctxRequestID),
			"client_id", id, "remote", c.ClientIP(), "reason", "assertion not yet valid (clock skew)", "err", err)
		pr := problem(http.StatusUnauthorized, "invalid_client", "Invalid client credentials",
			fmt.Sprintf("the client assertion is not yet valid (clock skew): its iat or nbf is more than %d s ahead of credgate's clock; synchronise the client's clock (NTP)",
				int(access.AssertionSkew/time.Second)))
		pr.OAuthError = "invalid_client"
		fail(c, pr)
		return
	}
	if errors.Is(err, service.ErrInvalidClient) || errors.Is(err, access.ErrInvalidAssertion) {
		failed = true
		s.authFailed(c, id, err, "invalid credentials")
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	tok, err := s.tokens.Issue(p.ClientID, string(p.Role), credID)
	if err != nil {
		fail(c, err)
		return
	}
	// The log names who got a token and for which credential, never the
	// token, the secret or the assertion.
	s.logger.InfoContext(ctx, "access token issued", "request_id", c.GetString(ctxRequestID), "client_id", p.ClientID,
		"credential", credID, "kid", s.tokens.KeyID())
	c.JSON(http.StatusOK, gin.H{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.tokens.TTL().Seconds())})
}

// authFailed answers a failed client authentication (err: why the
// credentials were refused, nil when they were not looked up). The client
// id is logged only when it names a partner: a caller that pasted its
// secret there must not find it in the logs.
func (s *Server) authFailed(c *gin.Context, clientID string, err error, why string) {
	s.logger.WarnContext(c.Request.Context(), "client authentication failed", "request_id", c.GetString(ctxRequestID),
		"client_id", service.LoggableClientID(clientID, err), "remote", c.ClientIP(), "reason", why)
	fail(c, service.ErrInvalidClient)
}

// verifyAssertion authenticates a partner by a client assertion and
// refuses a replayed one.
func (s *Server) verifyAssertion(ctx context.Context, clientID, assertion string) (service.Partner, string, error) {
	p, keys, err := s.partners.AssertionKeys(ctx, clientID)
	if err != nil {
		return service.Partner{}, "", err
	}
	a, err := s.tokens.VerifyAssertion(assertion, clientID, keys)
	if err != nil {
		return service.Partner{}, "", err
	}
	// Remembered as long as VerifyAssertion would accept it.
	if !s.limits.replay.FirstUse(ctx, "assertion:"+clientID+":"+a.JTI, a.Expires.Add(access.TokenLeeway+time.Second)) {
		return service.Partner{}, "", fmt.Errorf("%w: jti already used", access.ErrInvalidAssertion)
	}
	return p, a.KeyID, nil
}

// jwksHandler serves GET /.well-known/jwks.json: the public keys that verify
// access tokens, for resource servers and partners that check tokens
// themselves.
func (s *Server) jwksHandler(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/jwk-set+json", s.tokens.JWKS())
}
