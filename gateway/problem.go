package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/credgate/credgate/access"
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
	// Rule names the catalogue rule that refused the request (lifecycle
	// refusals: repair locks, exit windows, cross-list rules).
	Rule string `json:"rule,omitempty"`
	// Record and Receipt say what remains provable of an erased record
	// (record_erased).
	Record  *ErasedRecordView `json:"record,omitempty"`
	Receipt *evidence.Receipt `json:"receipt,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header
	// (seconds) by fail.
	RetryAfter int `json:"-"`
}

// ErasedRecordView is an erased record's identity and place in the log.
type ErasedRecordView struct {
	ID         string `json:"id"`
	LogIndex   uint64 `json:"log_index"`
	RecordHash string `json:"record_hash"`
	LeafHash   string `json:"leaf_hash"`
}

// Error makes a Problem usable as an error that already knows its answer.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// ProblemLine is one rejected line of an import.
type ProblemLine struct {
	Line   int    `json:"line"`
	Detail string `json:"detail"`
	// Code is the problem code the line's error would have on its own
	// (e.g. full_capacity_required), so clients can switch on it.
	Code string `json:"code,omitempty"`
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
	if p := jsonProblem(err); p != nil {
		return p
	}
	var erased *service.ErasedRecord
	if errors.As(err, &erased) {
		pr := problem(http.StatusGone, "record_erased", "Record erased",
			"the record's body was erased; its identity, place in the log and hashes remain provable")
		pr.Record = &ErasedRecordView{ID: erased.ID, LogIndex: erased.Index, RecordHash: erased.RecordHash, LeafHash: erased.LeafHash}
		pr.Receipt = erased.Receipt
		return pr
	}
	var scr *service.ScreeningFileError
	if errors.As(err, &scr) {
		pr := problem(http.StatusUnprocessableEntity, "screening_rejected", "Screening file rejected",
			"some lines are malformed; nothing was queued")
		for _, l := range scr.Lines {
			pr.Errors = append(pr.Errors, ProblemLine{Line: l.Line, Detail: l.Err.Error()})
		}
		return pr
	}
	var imp *service.ImportError
	if errors.As(err, &imp) {
		pr := problem(http.StatusUnprocessableEntity, "import_rejected", "Import rejected",
			"some lines are invalid; nothing was imported")
		for i, l := range imp.Lines {
			if i == maxReportedLines {
				break
			}
			line := ProblemLine{Line: l.Line, Detail: l.Err.Error()}
			if lp := problemFor(l.Err); lp.Status < http.StatusInternalServerError {
				line.Code = lp.Code
			}
			pr.Errors = append(pr.Errors, line)
		}
		return pr
	}
	// A responsible person's bad ID number is about that person, not the
	// subject: it must not fall through to invalid_subject_id below.
	if errors.Is(err, policy.ErrInvalidResponsible) {
		pr := problem(http.StatusBadRequest, "invalid_responsible_person", "Invalid responsible person", err.Error())
		pr.Field, pr.Reason = "responsible_persons", identifierReason(err)
		return pr
	}
	if r := identifierReason(err); r != "" {
		pr := problem(http.StatusBadRequest, "invalid_subject_id", "Invalid subject identifier", err.Error())
		pr.Field, pr.Reason = "subject.id", r
		return pr
	}
	if errors.Is(err, policy.ErrFullCapacityRequired) {
		// Before invalid_entry and invalid_violation, which it also wraps:
		// the request is well formed, but the list (or the rule set leading
		// to it) may not hold this person (篇四 第二条).
		pr := problem(http.StatusUnprocessableEntity, "full_capacity_required", "Full civil capacity required", err.Error())
		pr.Field = "subject_id"
		return pr
	}
	if pr := lifecycleProblem(err); pr != nil {
		return pr
	}
	if pr := scopeProblem(err); pr != nil {
		return pr
	}
	if pr := followUpProblem(err); pr != nil {
		return pr
	}
	if pr := eventsProblem(err); pr != nil {
		return pr
	}
	switch {
	case errors.Is(err, policy.ErrUnknownAction):
		pr := problem(http.StatusBadRequest, "unknown_action", "Unknown business action", err.Error())
		pr.Field = "action"
		return pr
	case errors.Is(err, service.ErrActionNotAllowed):
		return problem(http.StatusForbidden, "action_not_allowed", "Action not allowed", err.Error())
	case errors.Is(err, service.ErrSubjectKindNotAllowed):
		pr := problem(http.StatusForbidden, "subject_kind_not_allowed", "Subject kind not allowed", err.Error())
		pr.Field = "subject.id"
		return pr
	case errors.Is(err, service.ErrScopeNarrowed):
		// A job's stored answers disclose more than the partner's scope
		// now covers: they are proven as stored and are not re-rendered.
		return problem(http.StatusForbidden, "scope_narrowed", "Scope narrowed", err.Error())
	case errors.Is(err, ErrOverloaded):
		return overloadedProblem(err)
	case errors.Is(err, ErrScreeningExceedsQuota):
		// No Retry-After: no wait lets the file through.
		return problem(http.StatusUnprocessableEntity, "screening_exceeds_quota", "Screening exceeds quota", err.Error())
	case errors.Is(err, ErrRateLimited):
		return problem(http.StatusTooManyRequests, "rate_limited", "Too many requests", err.Error()+"; wait Retry-After seconds")
	case errors.Is(err, service.ErrPartnerRevoked):
		return problem(http.StatusConflict, "partner_revoked", "Partner is revoked", err.Error())
	case errors.Is(err, service.ErrAuditUnavailable):
		// Fail closed: no administrative act without its record.
		return problem(http.StatusServiceUnavailable, "audit_unavailable", "Audit log unavailable",
			"the act could not be recorded in the evidence log, so it was not performed; retry")
	case errors.Is(err, service.ErrBatchTooLarge):
		return problem(http.StatusRequestEntityTooLarge, "batch_too_large", "Batch too large", err.Error())
	case errors.Is(err, service.ErrEmptyBatch):
		return problem(http.StatusBadRequest, "empty_batch", "Empty batch", err.Error())
	case errors.Is(err, service.ErrInvalidIdempotencyKey):
		pr := problem(http.StatusBadRequest, "invalid_idempotency_key", "Invalid idempotency key", err.Error())
		pr.Field = "Idempotency-Key"
		return pr
	case errors.Is(err, service.ErrIdempotencyKeyReused):
		// The draft's 422: the key names another request; nothing was
		// recorded.
		pr := problem(http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency key reused",
			err.Error()+"; send a new key for a new request")
		pr.Field = "Idempotency-Key"
		return pr
	case errors.Is(err, service.ErrInvalidReference):
		pr := problem(http.StatusBadRequest, "invalid_reference", "Invalid reference", err.Error())
		pr.Field = "reference"
		return pr
	case errors.Is(err, service.ErrDataUnavailable):
		// Never "clear" for a subject whose entries cannot be read.
		return problem(http.StatusServiceUnavailable, "data_unavailable", "Entry data unavailable",
			"the entries of this subject could not be read (no cached copy, store unreachable); nothing was answered; retry")
	case errors.Is(err, service.ErrStoreUnavailable):
		// A database that is down or does not answer within its bound
		// (store.timeout) fails the request, never hangs it.
		return problem(http.StatusServiceUnavailable, "store_unavailable", "Store unavailable",
			"the database could not be reached or did not answer in time; nothing was changed; retry")
	case errors.Is(err, service.ErrSnapshotRejected):
		pr := problem(http.StatusUnprocessableEntity, "snapshot_rejected", "Snapshot rejected",
			"the upstream snapshot has invalid records; nothing of it was applied")
		var se *service.SnapshotError
		if errors.As(err, &se) {
			for i, l := range se.Lines {
				if i == maxReportedLines {
					break
				}
				pr.Errors = append(pr.Errors, ProblemLine{Line: l.Line, Detail: l.Err.Error()})
			}
		}
		return pr
	case errors.Is(err, service.ErrSnapshotTooLarge):
		return problem(http.StatusRequestEntityTooLarge, "snapshot_too_large", "Snapshot too large", err.Error())
	case errors.Is(err, service.ErrInvalidSource):
		return problem(http.StatusBadRequest, "invalid_source", "Invalid source", err.Error())
	case errors.Is(err, service.ErrTooManyRecords):
		return problem(http.StatusUnprocessableEntity, "too_many_records", "Too many records", err.Error())
	case errors.Is(err, service.ErrScreeningTooLarge):
		return problem(http.StatusRequestEntityTooLarge, "screening_too_large", "Screening too large", err.Error())
	case errors.Is(err, service.ErrScreeningNotDone):
		return problem(http.StatusConflict, "screening_not_done", "Screening not done", err.Error())
	case errors.Is(err, service.ErrScreeningExpired):
		return problem(http.StatusGone, "screening_expired", "Screening expired", err.Error())
	case errors.Is(err, service.ErrScreeningUnavailable):
		// The results are on another replica's disk (store.screenings_dir
		// not shared): a retry may reach that replica.
		return problem(http.StatusServiceUnavailable, "screening_unavailable", "Screening results unavailable", err.Error())
	case errors.Is(err, service.ErrTooManyScreenings):
		// No Retry-After: when a job ends is not known.
		return problem(http.StatusTooManyRequests, "too_many_screenings", "Too many screenings", err.Error())
	case errors.Is(err, service.ErrLineTooLong):
		// A line is one entry: alone, it would be a body past MaxJSONBody.
		return problem(http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large", err.Error())
	case errors.Is(err, service.ErrImportTooLarge):
		return problem(http.StatusRequestEntityTooLarge, "import_too_large", "Import too large", err.Error())
	case errors.Is(err, policy.ErrEntryRevoked):
		return problem(http.StatusConflict, "entry_revoked", "Entry is revoked", err.Error())
	case errors.Is(err, policy.ErrInvalidEntry), errors.Is(err, policy.ErrUnknownList):
		return problem(http.StatusBadRequest, "invalid_entry", "Invalid entry", err.Error())
	case errors.Is(err, service.ErrLastAdmin):
		return problem(http.StatusConflict, "last_admin", "Last administrator", err.Error())
	case errors.Is(err, service.ErrInvalidPartner):
		return problem(http.StatusBadRequest, "invalid_partner", "Invalid partner", err.Error())
	case errors.Is(err, access.ErrMissingToken):
		return problem(http.StatusUnauthorized, "missing_token", "Missing bearer token",
			"send Authorization: Bearer <token> from POST /v1/oauth/token")
	case errors.Is(err, access.ErrTokenExpired):
		// Same code as any bad token (clients that renew on invalid_token
		// keep working), but the holder is told what to do.
		pr := problem(http.StatusUnauthorized, "invalid_token", "Invalid token", "token expired; request a new one at /v1/oauth/token")
		pr.Reason = "token_expired"
		return pr
	case errors.Is(err, access.ErrInvalidToken):
		return problem(http.StatusUnauthorized, "invalid_token", "Invalid token", "the token is malformed, forged or not credgate's")
	case errors.Is(err, service.ErrInvalidClient):
		pr := problem(http.StatusUnauthorized, "invalid_client", "Invalid client credentials", "")
		pr.OAuthError = "invalid_client"
		return pr
	case errors.Is(err, evidence.ErrUnavailable):
		// Fail closed: nothing is answered without its evidence.
		return problem(http.StatusServiceUnavailable, "evidence_unavailable", "Evidence log unavailable",
			"the answer could not be recorded as evidence, so none was given; retry")
	case errors.Is(err, evidence.ErrTreeSize):
		return problem(http.StatusBadRequest, "tree_size_out_of_range", "Tree size out of range", err.Error())
	case errors.Is(err, evidence.ErrNoCheckpoint):
		return problem(http.StatusServiceUnavailable, "no_checkpoint", "No checkpoint yet", "no checkpoint has been signed yet; retry")
	case errors.Is(err, evidence.ErrTreeCorrupt):
		return problem(http.StatusInternalServerError, "evidence_corrupt", "Evidence log corrupt",
			"the stored evidence does not agree with its tree; operators have been alerted")
	case errors.Is(err, service.ErrReceiptPending):
		// Not not_found: the check was answered, with a promise, and its
		// record is in the log once this replica integrates its spool.
		pr := problem(http.StatusNotFound, "receipt_pending", "Receipt pending",
			"the record is in this replica's evidence spool and not yet in the log; ask again after Retry-After seconds")
		pr.RetryAfter = 1
		return pr
	case errors.Is(err, service.ErrNotFound), errors.Is(err, evidence.ErrNotFound), errors.Is(err, evidence.ErrNoTile):
		return problem(http.StatusNotFound, "not_found", "Not found", err.Error())
	case errors.Is(err, service.ErrVersionMismatch):
		return problem(http.StatusPreconditionFailed, "precondition_failed", "Precondition failed",
			"the entry changed since it was read (If-Match); read it again and reapply the change")
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

// lifecycleProblem maps the errors of the entry lifecycle and of answers as
// of a past time; a refusal by a catalogue rule names the rule. nil for
// other errors.
func lifecycleProblem(err error) *Problem {
	var pr *Problem
	switch {
	case errors.Is(err, service.ErrAsOfNotAllowed):
		pr = problem(http.StatusForbidden, "as_of_not_allowed", "Answers as of a past time not allowed", err.Error())
		pr.Field = "as_of"
	case errors.Is(err, service.ErrInvalidAsOf):
		pr = problem(http.StatusBadRequest, "invalid_as_of", "Invalid time", err.Error())
		pr.Field = "as_of"
	case errors.Is(err, service.ErrHistoryUnavailable), errors.Is(err, service.ErrLifecycleUnsupported):
		pr = problem(http.StatusServiceUnavailable, "lifecycle_unavailable", "Lifecycle unavailable",
			"this server is not configured for entry history and lifecycle")
	case errors.Is(err, service.ErrInvalidState):
		pr = problem(http.StatusBadRequest, "invalid_query", "Invalid query", err.Error())
		pr.Field = "state"
	case errors.Is(err, policy.ErrRepairNotAllowed):
		pr = problem(http.StatusUnprocessableEntity, "repair_not_allowed", "Repair not allowed", err.Error())
	case errors.Is(err, policy.ErrExitNotAllowed):
		pr = problem(http.StatusUnprocessableEntity, "exit_not_allowed", "Exit not allowed", err.Error())
	case errors.Is(err, policy.ErrCrossListConflict):
		pr = problem(http.StatusConflict, "cross_list_conflict", "Cross-list rule conflict", err.Error())
	case errors.Is(err, policy.ErrObjectionOpen):
		pr = problem(http.StatusConflict, "objection_open", "Objection already open", err.Error())
	case errors.Is(err, policy.ErrEntryNotInForce):
		pr = problem(http.StatusConflict, "entry_not_in_force", "Entry not in force", err.Error())
	case errors.Is(err, policy.ErrAlreadyDecided):
		pr = problem(http.StatusConflict, "already_decided", "Already decided", err.Error())
	case errors.Is(err, policy.ErrWrongState):
		pr = problem(http.StatusConflict, "invalid_state", "Not allowed in the current state", err.Error())
	case errors.Is(err, policy.ErrInvalidDecision):
		pr = problem(http.StatusBadRequest, "invalid_decision", "Invalid decision", err.Error())
	case errors.Is(err, policy.ErrInvalidApplication):
		pr = problem(http.StatusBadRequest, "invalid_application", "Invalid application", err.Error())
	case errors.Is(err, policy.ErrInvalidViolation):
		pr = problem(http.StatusBadRequest, "invalid_violation", "Invalid violation record", err.Error())
	default:
		return nil
	}
	var re *policy.RuleError
	if errors.As(err, &re) {
		pr.Rule = re.Rule
	}
	return pr
}

// scopeProblem maps the errors of a check's context and valid time, and
// of a partner's region; nil for other errors.
func scopeProblem(err error) *Problem {
	var pr *Problem
	switch {
	case errors.Is(err, policy.ErrRegionInvalid):
		pr = problem(http.StatusBadRequest, "invalid_region", "Invalid region", err.Error())
		pr.Field = "context.region"
		if errors.Is(err, service.ErrInvalidPartner) {
			pr.Field = "region"
		}
	case errors.Is(err, policy.ErrUnknownIndustry):
		pr = problem(http.StatusBadRequest, "unknown_industry", "Unknown industry", err.Error())
		pr.Field = "context.industry"
	case errors.Is(err, policy.ErrUnknownSubjectType):
		pr = problem(http.StatusBadRequest, "unknown_subject_type", "Unknown subject type", err.Error())
		pr.Field = "context.subject_type"
	case errors.Is(err, policy.ErrUnknownEmployerType):
		pr = problem(http.StatusBadRequest, "unknown_employer_type", "Unknown employer type", err.Error())
		pr.Field = "context.employer_type"
	case errors.Is(err, service.ErrRegionOutsideJurisdiction):
		pr = problem(http.StatusForbidden, "region_outside_jurisdiction", "Region outside jurisdiction", err.Error())
		pr.Field = "context.region"
	case errors.Is(err, service.ErrInvalidValidAt):
		pr = problem(http.StatusBadRequest, "invalid_valid_at", "Invalid time", err.Error())
		pr.Field = "valid_at"
	}
	return pr
}

// eventsProblem maps the errors of push; nil for others.
func eventsProblem(err error) *Problem {
	var pr *Problem
	var wl *service.WatchlistError
	switch {
	case errors.As(err, &wl):
		pr = problem(http.StatusUnprocessableEntity, "watchlist_rejected", "Watchlist rejected",
			"some lines are not subjects this partner may check; nothing was changed")
		for _, l := range wl.Lines {
			line := ProblemLine{Line: l.Line, Detail: l.Err.Error()}
			if lp := problemFor(l.Err); lp.Status < http.StatusInternalServerError {
				line.Code = lp.Code
			}
			pr.Errors = append(pr.Errors, line)
		}
	case errors.Is(err, service.ErrWatchlistTooLarge):
		pr = problem(http.StatusRequestEntityTooLarge, "watchlist_too_large", "Watchlist part too large", err.Error())
	case errors.Is(err, service.ErrInvalidWatchlistOp):
		pr = problem(http.StatusBadRequest, "invalid_query", "Invalid query", err.Error())
		pr.Field = "op"
	case errors.Is(err, service.ErrInvalidCursor):
		pr = problem(http.StatusBadRequest, "invalid_cursor", "Invalid cursor", err.Error())
		pr.Field = "after"
	case errors.Is(err, service.ErrInvalidWebhook):
		pr = problem(http.StatusBadRequest, "invalid_webhook", "Invalid webhook", err.Error())
		pr.Field = "url"
	case errors.Is(err, service.ErrUnknownAuthority):
		pr = problem(http.StatusUnprocessableEntity, "unknown_authority", "Unknown authority", err.Error())
		pr.Field = "authorities"
	case errors.Is(err, service.ErrInvalidSubscription):
		pr = problem(http.StatusUnprocessableEntity, "invalid_subscription", "Invalid subscription", err.Error())
		pr.Field = "authorities"
	case errors.Is(err, service.ErrEventsUnavailable), errors.Is(err, service.ErrWebhooksUnavailable):
		pr = problem(http.StatusServiceUnavailable, "push_unavailable", "Push unavailable",
			"this server is not configured for events, watchlists and webhooks")
	}
	return pr
}

// followUpProblem maps the errors of feedback, statistics, coverage and
// commitments; nil for other errors.
func followUpProblem(err error) *Problem {
	var pr *Problem
	switch {
	case errors.Is(err, policy.ErrInvalidFeedback):
		pr = problem(http.StatusBadRequest, "invalid_feedback", "Invalid feedback", err.Error())
	case errors.Is(err, service.ErrFeedbackExists):
		pr = problem(http.StatusConflict, "feedback_exists", "Feedback exists", err.Error())
		pr.Field = "corrects"
	case errors.Is(err, service.ErrFeedbackNotExpected):
		pr = problem(http.StatusConflict, "feedback_not_expected", "No feedback on this record", err.Error())
	case errors.Is(err, service.ErrInvalidStatsQuery):
		pr = problem(http.StatusBadRequest, "invalid_query", "Invalid query", err.Error())
	case errors.Is(err, service.ErrInvalidCoverage):
		pr = problem(http.StatusBadRequest, "invalid_approvals", "Invalid approvals file", err.Error())
	case errors.Is(err, service.ErrCoverageTooLarge):
		pr = problem(http.StatusRequestEntityTooLarge, "approvals_too_large", "Approvals file too large", err.Error())
	case errors.Is(err, policy.ErrInvalidCommitment):
		pr = problem(http.StatusBadRequest, "invalid_commitment", "Invalid commitment", err.Error())
	case errors.Is(err, service.ErrCommitmentClosed):
		pr = problem(http.StatusConflict, "commitment_closed", "Commitment closed", err.Error())
	case errors.Is(err, service.ErrViolationNotAllowed):
		pr = problem(http.StatusUnprocessableEntity, "violation_not_allowed", "Violation not allowed", err.Error())
	}
	return pr
}

// fail writes err as problem+json and stops the chain. Internal errors are
// logged with the request id, never shown.
func fail(c *gin.Context, err error) {
	p := *problemFor(err)
	p.Instance = c.Request.URL.Path
	p.RequestID = c.GetString(ctxRequestID)
	if p.Status >= 500 {
		loggerOf(c).ErrorContext(c.Request.Context(), "request failed", "request_id", p.RequestID, "path", c.FullPath(), "err", err)
	}
	if p.Status == http.StatusUnauthorized {
		if p.OAuthError == "" {
			c.Header("WWW-Authenticate", `Bearer realm="credgate"`)
		} else if _, _, basic := c.Request.BasicAuth(); basic {
			// RFC 6749 §5.2: a client that authenticated with Basic is told so.
			c.Header("WWW-Authenticate", `Basic realm="credgate"`)
		}
	}
	if p.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	c.Header("Content-Type", problemContentType)
	c.AbortWithStatusJSON(p.Status, p)
}

// loggerOf returns the server's logger for this request.
func loggerOf(c *gin.Context) *slog.Logger {
	if l, ok := c.Value(ctxLogger).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
