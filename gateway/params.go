package gateway

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// plainParams refuses path and query parameters that are not UTF-8 text
// without U+0000, once the caller is authenticated (authenticate: every
// route that looks anything up by them is) and before the rate limit and
// any handler:
// PostgreSQL cannot take either in a text parameter (it fails the query,
// SQLSTATE 22021), while SQLite looks the value up and finds nothing, so
// the same request answered 500 on one store and 404 or 200 on the other.
// No id and no filter value of credgate can hold them (every id is
// generated, a partner's client id or a subject identifier is validated
// when it is created, and no stored text holds U+0000: strictjson refuses
// it in bodies), so nothing is refused here that could have been found.
//
//   - A path parameter names a resource: none has that name, 404
//     not_found; but a subject's identifier (GET /v1/subjects/{id}/status)
//     is refused as its handler refuses any identifier it cannot parse,
//     400 invalid_subject_id (reason charset).
//   - A query parameter is a filter or an option: 400 invalid_query,
//     naming the parameter when its name is text.
//
// The token endpoint's client id (a form field or Basic credentials) is
// checked by the token handler: a wrong credential, 401 invalid_client.
func plainParams(c *gin.Context) {
	for _, p := range c.Params {
		if plainText(p.Value) {
			continue
		}
		if c.FullPath() == subjectStatusPath {
			pr := problem(http.StatusBadRequest, "invalid_subject_id", "Invalid subject identifier",
				"the identifier is not UTF-8 text without NUL")
			pr.Field, pr.Reason = p.Key, "charset"
			fail(c, pr)
			return
		}
		fail(c, problem(http.StatusNotFound, "not_found", "Not found", "no such "+strings.ReplaceAll(p.Key, "_", " ")))
		return
	}
	if raw := c.Request.URL.RawQuery; raw != "" && !plainQuery(raw) {
		// Parsed as the handlers read it (URL.Query, which skips a pair it
		// cannot decode), so that every value a handler can see is looked at.
		q, _ := url.ParseQuery(raw)
		for k, vs := range q {
			ok := plainText(k)
			for _, v := range vs {
				ok = ok && plainText(v)
			}
			if ok {
				continue
			}
			pr := problem(http.StatusBadRequest, "invalid_query", "Invalid query", "a query parameter is not UTF-8 text without NUL")
			if plainText(k) {
				pr.Field = k
				pr.Detail = "the query parameter " + strconv.Quote(k) + " is not UTF-8 text without NUL"
			}
			fail(c, pr)
			return
		}
	}
	c.Next()
}

// subjectStatusPath is the route whose path parameter is a subject's
// identifier rather than a resource's id.
const subjectStatusPath = "/v1/subjects/:id/status"

// plainText reports whether s is UTF-8 without U+0000: what a text
// parameter of either store can hold.
func plainText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// plainQuery reports, without decoding it, that a raw query cannot decode
// to anything plainText refuses: no escape (a NUL or a stray byte can only
// come in as %00 or %FF), no raw NUL, valid UTF-8.
func plainQuery(raw string) bool {
	return strings.IndexByte(raw, '%') < 0 && plainText(raw)
}
