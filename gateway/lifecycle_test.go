package gateway_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// HTTP tests of the lifecycle endpoints and of answers as of a past time,
// through the harness: every exchange is validated against openapi.yaml.

const (
	lcOrg    = "91350100M000100Y43"
	lcOrg2   = "914403001922038216"
	lcPerson = "11010519491231002X"
)

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// entry creates an entry and returns its JSON.
func (h *harness) entry(subject, list string, published time.Time, extra map[string]any) map[string]any {
	h.t.Helper()
	body := map[string]any{
		"subject_id": subject, "list": list, "originating_department": "发起部门", "reason": "失信事由",
		"legal_basis": "依据", "decided_at": rfc(published), "published_at": rfc(published),
	}
	for k, v := range extra {
		body[k] = v
	}
	res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, body)
	if res.Status != http.StatusCreated {
		h.t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	return res.json(h.t)
}

// checkAs checks subject for action with token; asOf is optional.
func (h *harness) checkAs(token, subject, action, asOf string) map[string]any {
	h.t.Helper()
	body := map[string]any{"subject": map[string]any{"id": subject}, "action": action}
	if asOf != "" {
		body["as_of"] = asOf
	}
	res := h.doJSON(http.MethodPost, "/v1/checks", token, body)
	if res.Status != http.StatusOK {
		h.t.Fatalf("check: %d %s", res.Status, res.Body)
	}
	return res.json(h.t)
}

// auditor registers an auditor and returns its token.
func (h *harness) auditor() string {
	h.t.Helper()
	res := h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "审计", "role": "auditor"})
	if res.Status != http.StatusCreated {
		h.t.Fatalf("create auditor: %d %s", res.Status, res.Body)
	}
	m := res.json(h.t)
	return h.token(m["client_id"].(string), m["client_secret"].(string))
}

func measuresOf(ans map[string]any) []string {
	var out []string
	for _, m := range ans["measures"].([]any) {
		mm := m.(map[string]any)
		out = append(out, mm["id"].(string)+":"+mm["status"].(string))
	}
	return out
}

func TestHTTPObjectionLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, partner := h.partner("采购平台", "government_procurement")
	e := h.entry(lcOrg, "safety_production_blacklist", time.Now().AddDate(0, -2, 0), nil)
	id := e["id"].(string)
	validUntil := e["valid_until"].(string)
	if a := h.checkAs(partner, lcOrg, "government_procurement", ""); a["outcome"] != "restrict" {
		t.Fatalf("before: %v", a["outcome"])
	}

	path := "/v1/admin/entries/" + id + "/objections"
	problemCode(t, h.doJSON(http.MethodPost, path, h.adminTok, map[string]any{"filed_by": "the subject", "grounds": "g"}), 400, "invalid_application")
	problemCode(t, h.doJSON(http.MethodPost, path, h.adminTok, map[string]any{"filed_by": "administrator", "grounds": "g", "extra": 1}), 400, "invalid_json")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries/ent_00000000000000000000000000000000/objections", h.adminTok,
		map[string]any{"filed_by": "administrator", "grounds": "g"}), 404, "not_found")
	problemCode(t, h.doJSON(http.MethodPost, path, partner, map[string]any{"filed_by": "administrator", "grounds": "g"}), 403, "forbidden")

	res := h.doJSON(http.MethodPost, path, h.adminTok, map[string]any{
		"filed_by": "originating_department", "grounds": "事故责任认定已被撤销", "evidence_refs": []string{"复议决定书"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("file: %d %s", res.Status, res.Body)
	}
	m := res.json(t)
	obj := m["objection"].(map[string]any)
	objID := obj["id"].(string)
	if m["entry"].(map[string]any)["status"] != "under_objection" || obj["due_at"] == nil {
		t.Fatalf("filed: %s", res.Body)
	}
	problemCode(t, h.doJSON(http.MethodPost, path, h.adminTok, map[string]any{"filed_by": "administrator", "grounds": "again"}), 409, "objection_open")

	during := h.checkAs(partner, lcOrg, "government_procurement", "")
	if during["outcome"] != "clear" || !slices.Contains(measuresOf(during), "sp-18-procurement:suspended") {
		t.Fatalf("during: %v %v", during["outcome"], measuresOf(during))
	}
	list := h.doJSON(http.MethodGet, "/v1/admin/objections", h.adminTok, nil)
	if list.Status != 200 || len(list.json(t)["objections"].([]any)) != 1 {
		t.Fatalf("open objections: %s", list.Body)
	}
	if over := h.doJSON(http.MethodGet, "/v1/admin/objections?state=overdue&limit=10", h.adminTok, nil); over.Status != 200 || len(over.json(t)["objections"].([]any)) != 0 {
		t.Fatalf("overdue objections: %s", over.Body)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/objections?state=late", h.adminTok, nil), 400, "invalid_query")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/objections?limit=0", h.adminTok, nil), 400, "invalid_query")

	dpath := "/v1/admin/objections/" + objID + "/decision"
	problemCode(t, h.doJSON(http.MethodPost, dpath, h.adminTok, map[string]any{"decision": "maybe"}), 400, "invalid_decision")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/objections/obj_nope/decision", h.adminTok, map[string]any{"decision": "rejected"}), 404, "not_found")
	res = h.doJSON(http.MethodPost, dpath, h.adminTok, map[string]any{"decision": "rejected", "note": "核实无误"})
	if res.Status != http.StatusOK {
		t.Fatalf("decide: %d %s", res.Status, res.Body)
	}
	after := res.json(t)["entry"].(map[string]any)
	// The listing still ends a year from publication (篇十二 第六条 "自公布之日起计算").
	if after["status"] != "active" || after["valid_until"].(string) != validUntil {
		t.Fatalf("after rejection: status %v valid_until %v (was %s)", after["status"], after["valid_until"], validUntil)
	}
	problemCode(t, h.doJSON(http.MethodPost, dpath, h.adminTok, map[string]any{"decision": "upheld"}), 409, "already_decided")
	if a := h.checkAs(partner, lcOrg, "government_procurement", ""); a["outcome"] != "restrict" {
		t.Fatalf("after: %v", a["outcome"])
	}
}

func TestHTTPObjectionUpheldRevokes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := h.entry(lcPerson, "court_dishonest_debtor", time.Now().AddDate(0, -1, 0), nil)
	res := h.doJSON(http.MethodPost, "/v1/admin/entries/"+e["id"].(string)+"/objections", h.adminTok, map[string]any{"filed_by": "administrator", "grounds": "已履行"})
	objID := res.json(t)["objection"].(map[string]any)["id"].(string)
	res = h.doJSON(http.MethodPost, "/v1/admin/objections/"+objID+"/decision", h.adminTok, map[string]any{"decision": "upheld", "note": "信息有误"})
	if res.Status != http.StatusOK {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	ent := res.json(t)["entry"].(map[string]any)
	cause, _ := ent["revocation_cause"].(map[string]any)
	if ent["status"] != "revoked" || cause == nil || cause["objection_id"] != objID {
		t.Fatalf("upheld: %s", res.Body)
	}
	if a := h.checkAs(h.adminTok, lcPerson, "air_travel", ""); a["outcome"] != "clear" {
		t.Fatalf("after upheld objection: %v", a["outcome"])
	}
	// A correction only goes with upheld/corrected.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/objections/"+objID+"/decision", h.adminTok,
		map[string]any{"decision": "rejected", "correction": map[string]any{"reason": "x"}}), 400, "invalid_decision")
}

func TestHTTPRepairFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	recent := h.entry(lcOrg, "urban_management_black", time.Now().AddDate(0, -2, 0), nil)
	res := h.doJSON(http.MethodPost, "/v1/admin/entries/"+recent["id"].(string)+"/repairs", h.adminTok, map[string]any{"grounds": "已整改"})
	if p := problemCode(t, res, http.StatusUnprocessableEntity, "repair_not_allowed"); p["rule"] != "urban_management_black.repair.locks[0]" {
		t.Fatalf("rule %v", p["rule"])
	}
	old := h.entry(lcOrg2, "urban_management_black", time.Now().AddDate(-1, -1, 0), nil)
	res = h.doJSON(http.MethodPost, "/v1/admin/entries/"+old["id"].(string)+"/repairs", h.adminTok, map[string]any{"grounds": "已整改并作出信用承诺", "evidence_refs": []string{"承诺书"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("apply: %d %s", res.Status, res.Body)
	}
	rep := res.json(t)["repair"].(map[string]any)
	repID := rep["id"].(string)
	if rep["state"] != "applied" || rep["due_at"] == nil {
		t.Fatalf("repair %v", rep)
	}
	if l := h.doJSON(http.MethodGet, "/v1/admin/repairs", h.adminTok, nil); l.Status != 200 || len(l.json(t)["repairs"].([]any)) != 1 {
		t.Fatalf("repairs: %s", l.Body)
	}
	res = h.doJSON(http.MethodPost, "/v1/admin/repairs/"+repID+"/decision", h.adminTok, map[string]any{"decision": "approved"})
	if p := problemCode(t, res, http.StatusConflict, "invalid_state"); p["rule"] != "urban_management_black.repair.requires_review" {
		t.Fatalf("rule %v", p["rule"])
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/repairs/"+repID+"/review", h.adminTok, map[string]any{"finding": "", "recommendation": "approve"}), 400, "invalid_decision")
	if res = h.doJSON(http.MethodPost, "/v1/admin/repairs/"+repID+"/review", h.adminTok, map[string]any{"finding": "整改到位", "recommendation": "approve"}); res.Status != 200 {
		t.Fatalf("review: %d %s", res.Status, res.Body)
	}
	// The urban black list's measure: its publication and push (篇十三 第七条(五)).
	if a := h.checkAs(h.adminTok, lcOrg2, "public_display", ""); a["outcome"] != "reference" {
		t.Fatalf("before approval: %v", a["outcome"])
	}
	res = h.doJSON(http.MethodPost, "/v1/admin/repairs/"+repID+"/decision", h.adminTok, map[string]any{"decision": "approved", "note": "同意修复"})
	if res.Status != 200 || res.json(t)["entry"].(map[string]any)["status"] != "repaired" {
		t.Fatalf("approve: %d %s", res.Status, res.Body)
	}
	if a := h.checkAs(h.adminTok, lcOrg2, "public_display", ""); a["outcome"] != "clear" {
		t.Fatalf("after approval: %v", a["outcome"])
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/repairs/"+repID+"/decision", h.adminTok, map[string]any{"decision": "refused", "note": "x"}), 409, "already_decided")
	// The record stays.
	if g := h.doJSON(http.MethodGet, "/v1/admin/entries/"+old["id"].(string), h.adminTok, nil); g.Status != 200 || len(g.json(t)["repairs"].([]any)) != 1 {
		t.Fatalf("entry after repair: %s", g.Body)
	}
}

func TestHTTPExitApplication(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	early := h.entry(lcOrg, "safety_production_blacklist", time.Now().AddDate(0, -1, 0), nil)
	res := h.doJSON(http.MethodPost, "/v1/admin/entries/"+early["id"].(string)+"/exits", h.adminTok, map[string]any{"grounds": "未发生新的失信行为"})
	if p := problemCode(t, res, http.StatusUnprocessableEntity, "exit_not_allowed"); p["rule"] != "safety_production_blacklist.exit.apply_within_working_days" {
		t.Fatalf("rule %v", p["rule"])
	}
	due := h.entry(lcOrg2, "safety_production_blacklist", time.Now().AddDate(-1, 0, 10), nil)
	if due["exit_by_application"] != true {
		t.Fatalf("entry lacks exit_by_application: %v", due)
	}
	res = h.doJSON(http.MethodPost, "/v1/admin/entries/"+due["id"].(string)+"/exits", h.adminTok, map[string]any{"grounds": "未发生新的失信行为"})
	if res.Status != http.StatusCreated {
		t.Fatalf("apply exit: %d %s", res.Status, res.Body)
	}
	exitID := res.json(t)["exit"].(map[string]any)["id"].(string)
	if l := h.doJSON(http.MethodGet, "/v1/admin/exits", h.adminTok, nil); l.Status != 200 || len(l.json(t)["exits"].([]any)) != 1 {
		t.Fatalf("exits: %s", l.Body)
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/exits/"+exitID+"/decision", h.adminTok, map[string]any{"decision": "refused"}), 400, "invalid_decision")
	res = h.doJSON(http.MethodPost, "/v1/admin/exits/"+exitID+"/decision", h.adminTok, map[string]any{"decision": "approved", "note": "审核验收合格"})
	if res.Status != 200 || res.json(t)["exit"].(map[string]any)["state"] != "approved" {
		t.Fatalf("decide exit: %d %s", res.Status, res.Body)
	}
	// Lists without exit rules refuse applications, naming that.
	n := h.entry(lcPerson, "nanning_black", time.Now().AddDate(0, -11, -20), nil)
	res = h.doJSON(http.MethodPost, "/v1/admin/entries/"+n["id"].(string)+"/exits", h.adminTok, map[string]any{"grounds": "g"})
	if p := problemCode(t, res, http.StatusUnprocessableEntity, "exit_not_allowed"); p["rule"] != "nanning_black.exit" {
		t.Fatalf("rule %v", p["rule"])
	}
}

func TestHTTPViolationsDeriveBlackList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var last map[string]any
	for i := range 3 {
		res := h.doJSON(http.MethodPost, "/v1/admin/violations", h.adminTok, map[string]any{
			"subject_id": lcOrg2, "item": "um-g-10", "decided_at": rfc(time.Now().Add(-time.Duration(3-i) * time.Hour)),
			"department": "市城管局", "reference": "城管罚决字", "evidence_refs": []string{"处罚决定书"}})
		if res.Status != http.StatusCreated {
			t.Fatalf("record %d: %d %s", i, res.Status, res.Body)
		}
		last = res.json(t)
		if i == 1 && last["derived_entry"].(map[string]any)["list"] != "urban_management_general" {
			t.Fatalf("second record: %v", last)
		}
	}
	derived := last["derived_entry"].(map[string]any)
	trail := derived["derivation"].(map[string]any)
	if derived["list"] != "urban_management_black" || trail["rule"] != "urban_management.levels[2]" || len(trail["records"].([]any)) != 3 {
		t.Fatalf("third record: %v", derived)
	}
	if closed := last["closed_entries"].([]any); len(closed) != 1 || closed[0].(map[string]any)["status"] != "revoked" {
		t.Fatalf("closed: %v", closed)
	}
	if a := h.checkAs(h.adminTok, lcOrg2, "public_display", ""); a["outcome"] != "reference" {
		t.Fatalf("check: %v", a["outcome"])
	}
	res := h.doJSON(http.MethodGet, "/v1/admin/violations?subject_id="+lcOrg2, h.adminTok, nil)
	if res.Status != 200 {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	m := res.json(t)
	if len(m["records"].([]any)) != 3 || m["points"].([]any)[0].(map[string]any)["points"].(float64) != 12 {
		t.Fatalf("list: %s", res.Body)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/violations", h.adminTok, nil), 400, "invalid_query")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/violations", h.adminTok, map[string]any{
		"subject_id": lcOrg2, "item": "no-such-item", "decided_at": rfc(time.Now().Add(-time.Hour)), "department": "d", "reference": "r"}), 400, "invalid_violation")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/violations", h.adminTok, map[string]any{
		"subject_id": "91350100M000100Y44", "item": "um-g-10", "decided_at": rfc(time.Now().Add(-time.Hour)), "department": "d", "reference": "r"}), 400, "invalid_subject_id")
}

// A past check re-run as of its own time gives the same answer, although
// the entry has changed; only administrators and auditors may ask.
func TestHTTPAsOfReproducesCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, partner := h.partner("登记机关", "executive_appointment")
	auditor := h.auditor()
	e := h.entry(lcOrg, "serious_illegal_enterprise", time.Now().AddDate(0, -1, 0), map[string]any{
		"responsible_persons": []map[string]any{{"id": lcPerson, "role": "legal_representative"}}})
	first := h.checkAs(partner, lcPerson, "executive_appointment", "")
	if first["outcome"] != "prohibit" {
		t.Fatalf("first: %v", first["outcome"])
	}
	m := first["measures"].([]any)[0].(map[string]any)
	via := m["via"].(map[string]any)
	if m["id"] != "sie-12-executive-ban" || via["organization"] != lcOrg || via["role"] != "legal_representative" || m["until"] == nil {
		t.Fatalf("executive ban through the company: %v", m)
	}
	res := h.doJSON(http.MethodPost, "/v1/admin/entries/"+e["id"].(string)+":revoke", h.adminTok, map[string]any{"reason": "撤销"})
	if res.Status != 200 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if now := h.checkAs(partner, lcPerson, "executive_appointment", ""); now["outcome"] != "clear" {
		t.Fatalf("now: %v", now["outcome"])
	}
	checkedAt := first["checked_at"].(string)
	for _, tok := range []string{h.adminTok, auditor} {
		again := h.checkAs(tok, lcPerson, "executive_appointment", checkedAt)
		if again["outcome"] != first["outcome"] || !slices.Equal(measuresOf(again), measuresOf(first)) || again["as_of"] == nil {
			t.Fatalf("as of %s: %v %v, want %v %v", checkedAt, again["outcome"], measuresOf(again), first["outcome"], measuresOf(first))
		}
	}
	body := map[string]any{"subject": map[string]any{"id": lcPerson}, "action": "executive_appointment", "as_of": checkedAt}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", partner, body), 403, "as_of_not_allowed")
	body["as_of"] = rfc(time.Now().Add(time.Hour))
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, body), 400, "invalid_as_of")
	body["as_of"] = "yesterday"
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, body), 400, "invalid_json")
}

func TestHTTPSubjectStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, partner := h.partner("采购平台", "public_tendering")
	auditor := h.auditor()
	red := h.entry(lcOrg, "honest_exemplar_redlist", time.Now().AddDate(-1, 0, 0), nil)
	before := time.Now()
	time.Sleep(2 * time.Millisecond) // the black entry is recorded strictly after `before`
	h.entry(lcOrg, "safety_production_blacklist", time.Now(), nil)

	// The red entry stays (no national text removes it, JUDGEMENTS.md "List rules");
	// its incentives are withheld while the black entry is in force (below).
	g := h.doJSON(http.MethodGet, "/v1/admin/entries/"+red["id"].(string), h.adminTok, nil).json(t)
	if g["status"] != "active" || g["revocation_cause"] != nil {
		t.Fatalf("red entry: %v", g)
	}

	q := url.Values{"at": {rfc(before)}}
	res := h.doJSON(http.MethodGet, "/v1/subjects/"+lcOrg+"/status?"+q.Encode(), auditor, nil)
	if res.Status != 200 {
		t.Fatalf("status as of before: %d %s", res.Status, res.Body)
	}
	st := res.json(t)
	if es := st["entries"].([]any); len(es) != 1 || es[0].(map[string]any)["status"] != "active" || es[0].(map[string]any)["list"] != "honest_exemplar_redlist" {
		t.Fatalf("entries as of before: %v", es)
	}
	if st["receipt"] == nil {
		t.Fatal("status answer without receipt")
	}
	outcomes := map[string]string{}
	for _, a := range st["actions"].([]any) {
		outcomes[a.(map[string]any)["action"].(string)] = a.(map[string]any)["outcome"].(string)
	}
	if outcomes["public_tendering"] != "incentive" {
		t.Fatalf("actions as of before: %v", outcomes)
	}
	res = h.doJSON(http.MethodGet, "/v1/subjects/"+lcOrg+"/status", h.adminTok, nil)
	if res.Status != 200 {
		t.Fatalf("status now: %d %s", res.Status, res.Body)
	}
	outcomes = map[string]string{}
	for _, a := range res.json(t)["actions"].([]any) {
		outcomes[a.(map[string]any)["action"].(string)] = a.(map[string]any)["outcome"].(string)
	}
	if outcomes["public_tendering"] != "restrict" {
		t.Fatalf("actions now: %v", outcomes)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/subjects/"+lcOrg+"/status", partner, nil), 403, "forbidden")
	// Auditors read the lifecycle listings; they change nothing.
	for _, path := range []string{"/v1/admin/objections", "/v1/admin/repairs?state=overdue", "/v1/admin/exits", "/v1/admin/violations?subject_id=" + lcOrg} {
		if r := h.doJSON(http.MethodGet, path, auditor, nil); r.Status != http.StatusOK {
			t.Fatalf("auditor GET %s: %d %s", path, r.Status, r.Body)
		}
		problemCode(t, h.doJSON(http.MethodGet, path, partner, nil), 403, "forbidden")
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries/"+red["id"].(string)+"/objections", auditor,
		map[string]any{"filed_by": "administrator", "grounds": "g"}), 403, "forbidden")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/subjects/"+lcOrg+"/status?at=2026-13-01", h.adminTok, nil), 400, "invalid_as_of")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/subjects/"+lcOrg+"/status?at="+url.QueryEscape(rfc(time.Now().Add(time.Hour))), h.adminTok, nil), 400, "invalid_as_of")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/subjects/91350100M000100Y44/status", h.adminTok, nil), 400, "invalid_subject_id")
}
