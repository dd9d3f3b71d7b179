package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Problem is an RFC 9457 problem detail. Code is stable: clients switch on
// it, not on the title or detail text.
type Problem struct {
	Type      string        `json:"type"`
	Title     string        `json:"title"`
	Status    int           `json:"status"`
	Detail    string        `json:"detail,omitempty"`
	Instance  string        `json:"instance,omitempty"`
	Code      string        `json:"code"`
	Field     string        `json:"field,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Errors    []ProblemLine `json:"errors,omitempty"`
	RequestID string        `json:"request_id,omitempty"`
	// OAuthError is the RFC 6749 error code, on token endpoint problems only.
	OAuthError string `json:"error,omitempty"`
}

// Error makes a Problem usable as an error that already knows its answer.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// ProblemLine is one rejected line of an import.
type ProblemLine struct {
	Line   int    `json:"line"`
	Detail string `json:"detail"`
}

const problemContentType = "application/problem+json"

func problem(status int, code, title, detail string) *Problem {
	return &Problem{Type: "urn:credgate:problem:" + code, Title: title, Status: status, Code: code, Detail: detail}
}

// identifierReason names which rule an identifier broke.
func identifierReason(err error) string {
	switch {
	case errors.Is(err, policy.ErrEmptyIdentifier):
		return "empty"
	case errors.Is(err, policy.ErrIdentifierLength):
		return "length"
	case errors.Is(err, policy.ErrIdentifierCharset):
		return "charset"
	case errors.Is(err, policy.ErrCheckCharacter):
		return "check_character"
	case errors.Is(err, policy.ErrBirthDate):
		return "birth_date"
	case errors.Is(err, policy.ErrDivisionCode):
		return "division_code"
	}
	return ""
}

// problemFor maps an error to its problem. It is the one place where
// domain and storage errors become HTTP answers.
func problemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var imp *service.ImportError
	if errors.As(err, &imp) {
		pr := problem(http.StatusUnprocessableEntity, "import_rejected", "Import rejected",
			"some lines are invalid; nothing was imported")
		for i, l := range imp.Lines {
			if i == maxReportedLines {
				break
			}
			pr.Errors = append(pr.Errors, ProblemLine{Line: l.Line, Detail: l.Err.Error()})
		}
		return pr
	}
	if r := identifierReason(err); r != "" {
		pr := problem(http.StatusBadRequest, "invalid_subject_id", "Invalid subject identifier", err.Error())
		pr.Field, pr.Reason = "subject.id", r
		return pr
	}
	switch {
	case errors.Is(err, policy.ErrUnknownAction):
		pr := problem(http.StatusBadRequest, "unknown_action", "Unknown business action", err.Error())
		pr.Field = "action"
		return pr
	case errors.Is(err, service.ErrActionNotAllowed):
		return problem(http.StatusForbidden, "action_not_allowed", "Action not allowed", err.Error())
	case errors.Is(err, service.ErrBatchTooLarge):
		return problem(http.StatusRequestEntityTooLarge, "batch_too_large", "Batch too large", err.Error())
	case errors.Is(err, service.ErrEmptyBatch):
		return problem(http.StatusBadRequest, "empty_batch", "Empty batch", err.Error())
	case errors.Is(err, service.ErrInvalidReference):
		pr := problem(http.StatusBadRequest, "invalid_reference", "Invalid reference", err.Error())
		pr.Field = "reference"
		return pr
	case errors.Is(err, service.ErrImportTooLarge):
		return problem(http.StatusRequestEntityTooLarge, "import_too_large", "Import too large", err.Error())
	case errors.Is(err, policy.ErrInvalidResponsible):
		pr := problem(http.StatusBadRequest, "invalid_responsible_person", "Invalid responsible person", err.Error())
		pr.Field = "responsible_persons"
		return pr
	case errors.Is(err, policy.ErrEntryRevoked):
		return problem(http.StatusConflict, "entry_revoked", "Entry is revoked", err.Error())
	case errors.Is(err, policy.ErrInvalidEntry), errors.Is(err, policy.ErrUnknownList):
		return problem(http.StatusBadRequest, "invalid_entry", "Invalid entry", err.Error())
	case errors.Is(err, service.ErrInvalidPartner):
		return problem(http.StatusBadRequest, "invalid_partner", "Invalid partner", err.Error())
	case errors.Is(err, service.ErrInvalidClient):
		pr := problem(http.StatusUnauthorized, "invalid_client", "Invalid client credentials", "")
		pr.OAuthError = "invalid_client"
		return pr
	case errors.Is(err, service.ErrNotFound), errors.Is(err, evidence.ErrNotFound):
		return problem(http.StatusNotFound, "not_found", "Not found", err.Error())
	case errors.Is(err, service.ErrConflict):
		return problem(http.StatusConflict, "conflict", "Conflict", "the resource changed or already exists; read it again")
	case errors.Is(err, evidence.ErrClosed):
		return problem(http.StatusServiceUnavailable, "shutting_down", "Shutting down", "retry on another replica")
	case errors.Is(err, context.DeadlineExceeded):
		return problem(http.StatusServiceUnavailable, "timeout", "Timed out", "the answer could not be recorded in time; nothing was answered")
	}
	return problem(http.StatusInternalServerError, "internal", "Internal error", "")
}

const maxReportedLines = 1000

// fail writes err as problem+json and stops the chain. Internal errors are
// logged with the request id, never shown.
func fail(c *gin.Context, err error) {
	p := *problemFor(err)
	p.Instance = c.Request.URL.Path
	p.RequestID = c.GetString(ctxRequestID)
	if p.Status >= 500 {
		slog.ErrorContext(c.Request.Context(), "request failed", "request_id", p.RequestID, "path", c.FullPath(), "err", err)
	}
	if p.Status == http.StatusUnauthorized && p.OAuthError == "" {
		c.Header("WWW-Authenticate", `Bearer realm="credgate"`)
	}
	c.Header("Content-Type", problemContentType)
	c.AbortWithStatusJSON(p.Status, p)
}
