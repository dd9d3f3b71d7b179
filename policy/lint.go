package policy

import (
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// LintFault is one fault LintCatalog finds: the catalogue file, the line of
// the measure in it (0 when the fault concerns the whole catalogue), the
// measure's id and what is wrong.
type LintFault struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Measure string `json:"measure,omitempty"`
	Msg     string `json:"msg"`
}

// String renders the fault as "file:line: measure: message".
func (f LintFault) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Measure, f.Msg)
}

// LintCatalog checks the catalogue in fsys against the source texts in
// sources (every *.txt at its root, holding the 篇 blocks), beyond what
// LoadCatalog validates: a measure may only say what its cited source says
// (篇二: 不得对目录清单之外的失信行为实施联合惩戒), so
//
//   - its text must occur in the section its source names (篇, then the
//     part 三、, article 第八条, item (七) and point 2 as far as the source
//     gives them), ignoring whitespace and line breaks of the extraction and
//     applying only the measure's declared source_fixes; "…" in the text
//     elides source text between fragments, which must occur in order, and
//     a fragment's final 。 may stand where the source sentence goes on;
//   - its text must end a sentence (a truncated sentence is not a measure);
//   - its effect must follow the verb of the text (不得/禁止 → prohibit,
//     限制 → restrict, 从严/审慎 → strict_review, 参考 → reference);
//   - no "***" (a place the source leaves blank) may be served as text,
//     authority or basis without a placeholder note;
//   - a measure taken from a local text must be scoped to the place that
//     issued it (篇四 南宁, 篇九 宁夏, 篇十 济南), and one taken from a text
//     whose place is left blank (篇二, 篇五, 篇七) must rest on a national
//     source, since no caller can be placed in a blank jurisdiction;
//   - every 《title》 its legal basis cites must be a title the sources give;
//   - its source_fixes must apply, and a list must not carry the same text
//     for the same action twice.
//
// A list that keeps its records with the recording department
// (kept_by_department) or counts its validity on after a rejected
// objection (objection_extends_validity) must quote the passage that says
// so, found in the section its source names like a measure's text. A list
// rule (repair and its locks, exit, escalation, keeping, objection
// extension) must rest on a text that binds the list's place: a list whose
// own source cites a national text is national, and a rule on it must cite
// a national text too — one resting only on a text whose place is blank
// (篇二, 篇五, 篇七) or on a named place's (篇四, 篇九, 篇十) binds no
// national list. The lists a points rule set leads to must agree on
// whether entries lapse (篇十三 第十六条 gives every level 5 years): one
// level without validity where another has it is a fault. Faults carry the
// list's line and "list <id>" in place of a measure.
//
// Faults are returned in file and line order; nil means clean.
func LintCatalog(fsys fs.FS, sources fs.FS) []LintFault {
	cat, err := LoadCatalog(fsys)
	if err != nil {
		return []LintFault{loadFault(fsys, err)}
	}
	src, err := loadSources(sources)
	if err != nil {
		return []LintFault{{File: ".", Msg: err.Error()}}
	}
	names, _ := fs.Glob(fsys, "*.yaml")
	sort.Strings(names)
	var faults []LintFault
	type key struct{ list, action, text string }
	seen := map[key]string{}
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			faults = append(faults, LintFault{File: name, Msg: err.Error()})
			continue
		}
		var f catalogFile
		if err := yaml.Unmarshal(data, &f); err != nil {
			faults = append(faults, LintFault{File: name, Msg: err.Error()})
			continue
		}
		listLines := itemLines(data, "lists", len(f.Lists))
		for i, l := range f.Lists {
			var msgs []string
			if l.KeptByDepartment != nil {
				msgs = append(msgs, lintKeeping("kept_by_department", *l.KeptByDepartment, src)...)
			}
			if l.ObjectionExtendsValidity != nil {
				msgs = append(msgs, lintKeeping("objection_extends_validity", *l.ObjectionExtendsValidity, src)...)
			}
			msgs = append(msgs, lintListRules(l, cat)...)
			for _, msg := range msgs {
				faults = append(faults, LintFault{File: name, Line: listLines[i], Measure: "list " + l.ID, Msg: msg})
			}
		}
		lines := measureLines(data, len(f.Measures))
		for i, m := range f.Measures {
			at := LintFault{File: name, Line: lines[i], Measure: m.ID}
			for _, msg := range lintMeasure(m, src) {
				fault := at
				fault.Msg = msg
				faults = append(faults, fault)
			}
			for _, a := range m.Actions {
				k := key{m.List, a, normalize(m.Text)}
				if prev, dup := seen[k]; dup {
					fault := at
					fault.Msg = fmt.Sprintf("same text, list and action as %s", prev)
					faults = append(faults, fault)
				} else {
					seen[k] = m.ID
				}
			}
		}
	}
	sort.SliceStable(faults, func(i, j int) bool {
		if faults[i].File != faults[j].File {
			return faults[i].File < faults[j].File
		}
		return faults[i].Line < faults[j].Line
	})
	return faults
}

var (
	loadErrFile    = regexp.MustCompile(`: ([^:\s]+\.yaml): `)
	loadErrMeasure = regexp.MustCompile(`: measure "([^"]+)"`)
	loadErrLine    = regexp.MustCompile(`\[(\d+):\d+\]`)
)

// loadFault places a catalogue that does not load: the file, and the line of
// the measure or of the YAML error the message names, so that a scope
// without its source or an unknown action is reported where it is.
func loadFault(fsys fs.FS, err error) LintFault {
	msg := err.Error()
	f := LintFault{File: ".", Msg: msg}
	m := loadErrFile.FindStringSubmatch(msg)
	if m == nil {
		return f
	}
	f.File = m[1]
	if l := loadErrLine.FindStringSubmatch(msg); l != nil {
		f.Line, _ = strconv.Atoi(l[1])
		f.Msg = strings.SplitN(msg, "\n", 2)[0]
		return f
	}
	id := loadErrMeasure.FindStringSubmatch(msg)
	if id == nil {
		return f
	}
	f.Measure = id[1]
	data, rerr := fs.ReadFile(fsys, f.File)
	if rerr != nil {
		return f
	}
	var cf struct {
		Measures []struct {
			ID string `yaml:"id"`
		} `yaml:"measures"`
	}
	if yaml.Unmarshal(data, &cf) != nil {
		return f
	}
	lines := measureLines(data, len(cf.Measures))
	for i, m := range cf.Measures {
		if m.ID == f.Measure {
			f.Line = lines[i]
		}
	}
	return f
}

// measureLines returns the line of each measure's id in a catalogue file.
func measureLines(data []byte, n int) []int { return itemLines(data, "measures", n) }

// itemLines returns the line of the id of each of the n items of section
// (measures, lists) in a catalogue file.
func itemLines(data []byte, section string, n int) []int {
	lines := make([]int, n)
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return lines
	}
	for i := range lines {
		p, err := yaml.PathString(fmt.Sprintf("$.%s[%d].id", section, i))
		if err != nil {
			continue
		}
		node, err := p.FilterFile(file)
		if err != nil || node == nil || node.GetToken() == nil {
			continue
		}
		lines[i] = node.GetToken().Position.Line
	}
	return lines
}

// sourceTexts holds the 篇 blocks of the source texts, whitespace removed.
type sourceTexts struct {
	blocks map[string]string // "篇十" → text
	all    string
}

var pianHeader = regexp.MustCompile(`(?m)^(篇[一二三四五六七八九十]+)[:：]`)

func loadSources(fsys fs.FS) (*sourceTexts, error) {
	names, err := fs.Glob(fsys, "*.txt")
	if err != nil || len(names) == 0 {
		return nil, fmt.Errorf("no source texts (*.txt) found")
	}
	sort.Strings(names)
	s := &sourceTexts{blocks: map[string]string{}}
	var all strings.Builder
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		text := string(data)
		idx := pianHeader.FindAllStringSubmatchIndex(text, -1)
		for i, m := range idx {
			end := len(text)
			if i+1 < len(idx) {
				end = idx[i+1][0]
			}
			s.blocks[text[m[2]:m[3]]] += normalize(text[m[0]:end])
		}
		all.WriteString(normalize(text))
	}
	if len(s.blocks) == 0 {
		return nil, fmt.Errorf("no 篇 sections in the source texts")
	}
	s.all = all.String()
	return s, nil
}

// normalize drops whitespace (line breaks and indentation of the extraction).
func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '\u3000' {
			return -1
		}
		return r
	}, s)
}

// localTexts maps the source texts issued by a named place to that place
// (GB/T 2260), as the texts name it: 篇四 南宁市 (第二条), 篇九 a district of
// 宁夏 (自治区, 驻宁), 篇十 济南市 (第二条).
var localTexts = map[string]string{"篇四": "450100", "篇九": "640000", "篇十": "370100"}

// blankPlaceTexts are local texts whose place the source leaves blank (XX县,
// X市, xx市): no caller can be placed there.
var blankPlaceTexts = map[string]bool{"篇二": true, "篇五": true, "篇七": true}

// nationalBasis are the national documents a measure restated by a local
// text may rest on, as the texts title them.
var nationalBasis = []string{"国发〔2016〕33号", "发改财金〔2016〕1001号", "《关于对重大税收违法案件当事人实施联合惩戒措施的合作备忘录》"}

func lintMeasure(m Measure, src *sourceTexts) []string {
	var out []string
	pian := ""
	if i := strings.IndexAny(m.Source, " ;；"); i > 0 {
		pian = m.Source[:i]
	} else {
		pian = m.Source
	}
	sections, err := src.sections(m.Source)
	if err != nil {
		out = append(out, err.Error())
	} else {
		fixed := make([]bool, len(m.SourceFixes))
		for k, section := range sections {
			for i, f := range m.SourceFixes {
				from, to := normalize(f.From), normalize(f.To)
				if strings.Contains(section, from) {
					fixed[i] = true
					section = strings.ReplaceAll(section, from, to)
				}
			}
			sections[k] = section
		}
		for i, f := range m.SourceFixes {
			if !fixed[i] {
				out = append(out, fmt.Sprintf("source fix %q → %q does not apply to %s", f.From, f.To, m.Source))
			}
		}
		var frag string
		matched := false
		for _, section := range sections {
			var ok bool
			if frag, ok = matchText(m.Text, section); ok {
				matched = true
				break
			}
		}
		if !matched {
			where := "it is not in the sources"
			if _, inSources := matchText(frag, src.all); inSources {
				where = "it occurs elsewhere in the sources"
			}
			out = append(out, fmt.Sprintf("text not found in %s (%s): %q", m.Source, where, frag))
		}
	}
	if t := strings.TrimSpace(m.Text); t != "" {
		last := []rune(t)[len([]rune(t))-1]
		if !strings.ContainsRune("。;；!！?？”\"", last) {
			out = append(out, "text does not end a sentence (a truncated source sentence is not a measure)")
		}
	}
	if m.Effect != EffectIncentive {
		if msg := checkVerb(m.Effect, normalize(m.Text)); msg != "" {
			out = append(out, msg)
		}
	}
	if m.Placeholder == "" {
		for what, v := range map[string]string{"text": m.Text, "authority": m.Authority, "legal_basis": m.LegalBasis} {
			if strings.Contains(v, "***") {
				out = append(out, fmt.Sprintf("%s serves a *** placeholder without a placeholder note", what))
			}
		}
	}
	if code, ok := localTexts[pian]; ok {
		if len(m.Scope.Regions) == 0 {
			out = append(out, fmt.Sprintf("measure of a local text (%s, region %s) has no region scope", pian, code))
		}
		for _, r := range m.Scope.Regions {
			if !RegionWithin(r, code) {
				out = append(out, fmt.Sprintf("scope region %s lies outside %s, which issued %s", r, code, pian))
			}
		}
	}
	if blankPlaceTexts[pian] {
		national := false
		for _, n := range nationalBasis {
			if strings.Contains(normalize(m.LegalBasis), normalize(n)) {
				national = true
			}
		}
		if !national {
			out = append(out, fmt.Sprintf("%s leaves its place blank; a measure from it must rest on a national source (one of %s)", pian, strings.Join(nationalBasis, ", ")))
		}
	}
	for _, title := range titleRE.FindAllString(m.LegalBasis, -1) {
		inner := strings.TrimSuffix(strings.TrimPrefix(title, "《"), "》")
		if !strings.Contains(src.all, normalize(inner)) {
			out = append(out, fmt.Sprintf("legal_basis cites %s, a title the sources do not give", title))
		}
	}
	return out
}

var titleRE = regexp.MustCompile(`《[^《》]+》`)

// lintKeeping checks that a list's quoted passage (kept_by_department,
// objection_extends_validity) occurs in the section its source names, as a
// measure's text must.
func lintKeeping(what string, k Keeping, src *sourceTexts) []string {
	sections, err := src.sections(k.Source)
	if err != nil {
		return []string{what + ": " + err.Error()}
	}
	var frag string
	for _, section := range sections {
		var ok bool
		if frag, ok = matchText(k.Text, section); ok {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s: text not found in %s: %q", what, k.Source, frag)}
}

// matchText reports whether text occurs in section, fragment by fragment
// ("…" elides), in order; it returns the first fragment that does not.
func matchText(text, section string) (string, bool) {
	pos := 0
	for _, frag := range strings.Split(strings.ReplaceAll(text, "...", "…"), "…") {
		frag = normalize(frag)
		if frag == "" {
			continue
		}
		i := strings.Index(section[pos:], frag)
		if i < 0 && (strings.HasSuffix(frag, "。") || strings.HasSuffix(frag, ";")) {
			short := strings.TrimSuffix(strings.TrimSuffix(frag, "。"), ";")
			i = strings.Index(section[pos:], short)
			if i >= 0 {
				frag = short
			}
		}
		if i < 0 {
			return frag, false
		}
		pos += i + len(frag)
	}
	return "", true
}

// verbs are the words that carry each effect in the texts. Beyond the
// four the catalogue states (不得/禁止, 限制, 从严/审慎, 参考): prohibit also
// by 禁入/不予/撤销/取消/吊销/阻止/暂停 (a suspended approval is not
// given); restrict by a worse price (上调/提高) or reduction (核减);
// strict_review by stricter or heavier supervision; reference by warnings
// and publication, the lightest measures.
var verbs = map[Effect][]string{
	EffectProhibit:     {"不得", "禁止", "禁入", "不予", "撤销", "取消", "吊销", "阻止", "暂停"},
	EffectRestrict:     {"限制", "上调", "提高", "核减"},
	EffectStrictReview: {"从严", "审慎", "严格", "严密", "从重", "重点监管", "重点监督", "加大", "加强", "强化", "重新审查", "监督", "监管"},
	EffectReference:    {"参考", "公示", "披露", "发布", "约谈", "提醒", "警示"},
}

func checkVerb(e Effect, text string) string {
	for _, v := range verbs[e] {
		if strings.Contains(text, v) {
			return ""
		}
	}
	var found []string
	for _, other := range []Effect{EffectProhibit, EffectRestrict, EffectStrictReview, EffectReference} {
		for _, v := range verbs[other] {
			if strings.Contains(text, v) {
				found = append(found, fmt.Sprintf("%s → %s", v, other))
				break
			}
		}
	}
	if len(found) == 0 {
		return fmt.Sprintf("effect %s but the text has no verb of any effect", e)
	}
	return fmt.Sprintf("effect %s does not follow the text's verb (%s)", e, strings.Join(found, ", "))
}

// --- locating a section -----------------------------------------------------

var sectionToken = regexp.MustCompile(`第([一二三四五六七八九十]+)条|[(（〔]([一二三四五六七八九十]+)[)）〕]|[(（]([0-9]+)[)）]|([一二三四五六七八九十]+)|([0-9]+)`)

// sections returns the normalised text of every section a source reference
// names ("篇十一 二(一)", "篇十三 第八条(二)(1)", "篇九 三(六)2"): a marker
// may occur more than once (篇十一 repeats its items in the appendix
// table), so each occurrence is a candidate. Only the first reference of a
// list ("…; 篇十 第五条") is located.
func (s *sourceTexts) sections(ref string) ([]string, error) {
	ref = strings.TrimSpace(ref)
	if i := strings.IndexAny(ref, ";；"); i >= 0 {
		ref = strings.TrimSpace(ref[:i])
	}
	pian, rest, _ := strings.Cut(ref, " ")
	block, ok := s.blocks[pian]
	if !ok {
		return nil, fmt.Errorf("source %q: no %s in the source texts", ref, pian)
	}
	cands := []string{block}
	for _, m := range sectionToken.FindAllStringSubmatch(rest, -1) {
		var starts, ends []string
		what := m[0]
		switch {
		case m[1] != "": // 第N条
			n := cnValue(m[1])
			starts, ends = []string{"第" + cnNumeral(n) + "条"}, []string{"第" + cnNumeral(n+1) + "条"}
		case m[2] != "": // (N)
			n := cnValue(m[2])
			starts, ends = bracketed(cnNumeral(n)), bracketed(cnNumeral(n+1))
		case m[3] != "": // (1)
			n, _ := strconv.Atoi(m[3])
			starts, ends = bracketed(strconv.Itoa(n)), bracketed(strconv.Itoa(n+1))
		case m[4] != "": // part 三、
			n := cnValue(m[4])
			starts, ends = []string{cnNumeral(n) + "、"}, []string{cnNumeral(n+1) + "、"}
			what = m[4] + "、"
		case m[5] != "": // point 2、 / 2.
			n, _ := strconv.Atoi(m[5])
			starts = []string{strconv.Itoa(n) + "、", strconv.Itoa(n) + "."}
			ends = []string{strconv.Itoa(n+1) + "、", strconv.Itoa(n+1) + "."}
		}
		var next []string
		for _, c := range cands {
			for from := 0; ; {
				i, l := findMarker(c[from:], starts)
				if i < 0 {
					break
				}
				sub := c[from+i+l:]
				if j, _ := findMarker(sub, ends); j >= 0 {
					sub = sub[:j]
				}
				next = append(next, sub)
				from += i + l
			}
		}
		if len(next) == 0 {
			return nil, fmt.Errorf("source %q: %s not found in %s", ref, what, pian)
		}
		cands = next
	}
	return cands, nil
}

func bracketed(n string) []string {
	return []string{"(" + n + ")", "（" + n + "）", "〔" + n + "〕"}
}

// findMarker finds the first of markers in text that is not the tail of a
// longer numeral (十三、 is not 三、, 12. is not 2.).
func findMarker(text string, markers []string) (int, int) {
	best, bestLen := -1, 0
	for _, mk := range markers {
		for from := 0; from < len(text); {
			i := strings.Index(text[from:], mk)
			if i < 0 {
				break
			}
			i += from
			if i > 0 && !strings.HasPrefix(mk, "(") && !strings.HasPrefix(mk, "（") && !strings.HasPrefix(mk, "〔") && !strings.HasPrefix(mk, "第") {
				prev := []rune(text[:i])
				p := prev[len(prev)-1]
				if strings.ContainsRune("一二三四五六七八九十第0123456789", p) {
					from = i + len(mk)
					continue
				}
			}
			if best < 0 || i < best {
				best, bestLen = i, len(mk)
			}
			break
		}
	}
	return best, bestLen
}

var cnDigits = []string{"", "一", "二", "三", "四", "五", "六", "七", "八", "九"}

// cnNumeral writes 1…99 in Chinese numerals as the texts number sections.
func cnNumeral(n int) string {
	switch {
	case n <= 0 || n > 99:
		return "\x00" // matches nothing: the texts number no such section
	case n < 10:
		return cnDigits[n]
	case n == 10:
		return "十"
	case n < 20:
		return "十" + cnDigits[n-10]
	default:
		return cnDigits[n/10] + "十" + cnDigits[n%10]
	}
}

// cnValue reads a Chinese numeral of 1…99.
func cnValue(s string) int {
	r := []rune(s)
	digit := func(c rune) int {
		for i, d := range cnDigits {
			if d == string(c) {
				return i
			}
		}
		return 0
	}
	switch {
	case len(r) == 1 && r[0] == '十':
		return 10
	case len(r) == 1:
		return digit(r[0])
	case r[0] == '十':
		return 10 + digit(r[1])
	case len(r) == 2:
		return digit(r[0]) * 10
	default:
		return digit(r[0])*10 + digit(r[2])
	}
}

var pianRef = regexp.MustCompile(`篇[一二三四五六七八九十]+`)

// textPlaces returns the texts a source reference cites, split into the
// national ones and the others (a blank place's or a named place's).
func textPlaces(ref string) (national, local []string) {
	for _, p := range pianRef.FindAllString(ref, -1) {
		if _, named := localTexts[p]; named || blankPlaceTexts[p] {
			local = append(local, p)
		} else {
			national = append(national, p)
		}
	}
	return national, local
}

// lintListRules checks that each rule of l rests on a text that can bind
// the list's place, and that the lists of a points rule set agree on
// validity.
func lintListRules(l List, cat *Catalog) []string {
	var out []string
	listNational, _ := textPlaces(l.Source)
	rules := map[string]string{}
	if l.Repair != nil {
		rules["repair"] = l.Repair.Source
		for i, lock := range l.Repair.Locks {
			rules[fmt.Sprintf("repair.locks[%d]", i)] = lock.Source
		}
	}
	if l.Exit != nil {
		rules["exit"] = l.Exit.Source
	}
	if l.Escalate != nil {
		rules["escalate"] = l.Escalate.Source
	}
	if l.KeptByDepartment != nil {
		rules["kept_by_department"] = l.KeptByDepartment.Source
	}
	if l.ObjectionExtendsValidity != nil {
		rules["objection_extends_validity"] = l.ObjectionExtendsValidity.Source
	}
	names := make([]string, 0, len(rules))
	for n := range rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		national, local := textPlaces(rules[n])
		if len(listNational) > 0 && len(national) == 0 && len(local) > 0 {
			out = append(out, fmt.Sprintf("%s rests only on %s, which cannot bind a national list (its source cites %s); cite the national text that provides it, or drop the rule",
				n, strings.Join(local, ", "), strings.Join(listNational, ", ")))
		}
	}
	if l.Validity.IsZero() && l.Kind != ListRed {
		for _, rs := range cat.ruleSets {
			leads, other := false, ""
			for _, lv := range rs.Levels {
				if lv.List == l.ID {
					leads = true
				} else if o, ok := cat.listByID[lv.List]; ok && !o.Validity.IsZero() && other == "" {
					other = o.ID
				}
			}
			if leads && other != "" {
				out = append(out, fmt.Sprintf("no validity, while %s of the same rule set %s has one: levels of one rule set lapse alike unless a text says otherwise", other, rs.ID))
			}
		}
	}
	return out
}
