package gateway

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// Header limits. net/http answers a request head past its own limit with a
// plain-text 431 that no client of credgate can parse, so the server's
// limit (HTTPMaxHeaderBytes, for http.Server.MaxHeaderBytes) sits above
// the gateway's: heads between the two are answered here as problems.
const (
	// MaxHeaderBytes bounds the request's header fields (names, values and
	// their separators); past it the answer is 431 headers_too_large.
	MaxHeaderBytes = 16 << 10
	// MaxAuthorizationBytes bounds the Authorization header. credgate's
	// tokens are well under 1 KiB; a longer header is not one of them and
	// is answered 401 (invalid_token, or invalid_client at the token
	// endpoint) without being parsed.
	MaxAuthorizationBytes = 8 << 10
	// HTTPMaxHeaderBytes is what http.Server.MaxHeaderBytes should be: a
	// backstop for heads no problem can be written for.
	HTTPMaxHeaderBytes = 64 << 10
)

// singleQuery refuses a query parameter given more than once
// (?op=remove&op=add): the handler would read the first, a proxy's log or
// an auditor may read the last, and the caller meant one of them. No
// operation takes a list in the query.
func singleQuery(c *gin.Context) {
	if c.Request.URL.RawQuery == "" {
		c.Next()
		return
	}
	for k, vs := range c.Request.URL.Query() {
		if len(vs) > 1 {
			fail(c, problem(http.StatusBadRequest, "invalid_query", "Invalid query", "the query parameter "+strconv.Quote(k)+" is given more than once"))
			return
		}
	}
	c.Next()
}

// limitHeaders answers over-long headers as problems, before
// authentication reads them.
func limitHeaders(c *gin.Context) {
	auth := 0
	total := len(c.Request.Host)
	for k, vs := range c.Request.Header {
		for _, v := range vs {
			total += len(k) + len(v) + 4 // ": " and CRLF
			if k == "Authorization" {
				auth += len(v)
			}
		}
	}
	if auth > MaxAuthorizationBytes {
		detail := "the Authorization header is longer than " + strconv.Itoa(MaxAuthorizationBytes) + " bytes"
		if c.FullPath() == tokenPath {
			c.Header("Cache-Control", "no-store")
			p := problem(http.StatusUnauthorized, "invalid_client", "Invalid client", detail)
			p.OAuthError = "invalid_client"
			fail(c, p)
			return
		}
		fail(c, problem(http.StatusUnauthorized, "invalid_token", "Invalid token", detail))
		return
	}
	if total > MaxHeaderBytes {
		fail(c, problem(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "Request headers too large",
			"the header fields are longer than "+strconv.Itoa(MaxHeaderBytes)+" bytes"))
		return
	}
	c.Next()
}

// tokenPath is the token endpoint, whose body is a form.
const tokenPath = "/v1/oauth/token"

// jsonRoute reports whether a route's request body is JSON: all but the
// token endpoint (a form, refused with an OAuth error of its own), the
// import (CSV or NDJSON) and coverage (CSV), refused with 415 by their
// handlers.
func jsonRoute(route string) bool {
	switch route {
	case "", tokenPath, "/v1/admin/entries:import", `/v1/admin/entries\:import`, "/v1/coverage", watchlistPath, "/v1/screenings":
		return false
	}
	return true
}

// requireJSON refuses with 415 a body sent to a JSON endpoint under
// another media type: a body labelled text/plain or form-encoded is not
// what the caller meant to send, and a charset other than UTF-8 would be
// misread. A request without a body (verbs such as :rotate) passes.
func requireJSON(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		c.Next()
		return
	}
	ct := c.GetHeader("Content-Type")
	if !jsonRoute(c.FullPath()) || (ct == "" && c.Request.ContentLength == 0) || jsonMediaType(ct) {
		c.Next()
		return
	}
	fail(c, problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
		"send the body as Content-Type: application/json (UTF-8)"))
}

// jsonMediaType reports whether ct is application/json, with no charset or
// UTF-8's.
func jsonMediaType(ct string) bool {
	if ct == "application/json" || ct == "application/json; charset=utf-8" {
		return true // what clients send, without parsing
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}
