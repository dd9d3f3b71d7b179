package policy

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Effect is what a measure does to a business action. Effects are ordered:
// prohibit › restrict › strict_review › reference; incentive is the red-list
// counterpart and never outranks a restriction.
type Effect string

// The effects a measure may have.
const (
	EffectProhibit     Effect = "prohibit"
	EffectRestrict     Effect = "restrict"
	EffectStrictReview Effect = "strict_review"
	EffectReference    Effect = "reference"
	EffectIncentive    Effect = "incentive"
)

// rank orders punitive effects; incentive ranks below every punitive effect
// so that "black and red at once" resolves to the restriction.
func (e Effect) rank() int {
	switch e {
	case EffectProhibit:
		return 4
	case EffectRestrict:
		return 3
	case EffectStrictReview:
		return 2
	case EffectReference:
		return 1
	case EffectIncentive:
		return 0
	}
	return -1
}

// Valid reports whether e is a known effect.
func (e Effect) Valid() bool { return e.rank() >= 0 }

// ListKind classifies a list; list names themselves are per rule set.
type ListKind string

// The kinds of list seen in the source texts.
const (
	ListBlack        ListKind = "black"         // 黑名单, 严重失信
	ListKeyAttention ListKind = "key_attention" // 重点关注名单
	ListYellow       ListKind = "yellow"        // 黄名单, 较重失信
	ListGeneral      ListKind = "general"       // 一般失信
	ListRed          ListKind = "red"           // 红名单, 守信激励
)

func (k ListKind) valid() bool {
	switch k {
	case ListBlack, ListKeyAttention, ListYellow, ListGeneral, ListRed:
		return true
	}
	return false
}

// Role is the capacity in which a person is responsible for an organisation (落实到人).
type Role string

// Roles named in the source texts.
const (
	RoleLegalRepresentative Role = "legal_representative" // 法定代表人
	RolePrincipal           Role = "principal"            // 主要负责人
	RoleSafetyHead          Role = "safety_head"          // 分管安全的负责人
	RoleDirectlyResponsible Role = "directly_responsible" // 直接责任人员
	RoleDirector            Role = "director"             // 董事
	RoleShareholder         Role = "shareholder"          // 股东
	RoleSeniorManager       Role = "senior_manager"       // 高级管理人员
	// RoleActualController is 实际控制人: whoever controls the organisation
	// in fact, shareholder or not (篇十 第二条 煤矿…实际控制人).
	RoleActualController Role = "actual_controller"
)

// Roles lists every role in a stable order.
func Roles() []Role {
	return []Role{RoleLegalRepresentative, RolePrincipal, RoleSafetyHead, RoleDirectlyResponsible,
		RoleDirector, RoleShareholder, RoleSeniorManager, RoleActualController}
}

func (r Role) valid() bool { return slices.Contains(Roles(), r) }

// Validity is how long an entry stays in force from its publication date.
// The zero value means "until revoked".
type Validity struct {
	Years  int `yaml:"years,omitempty" json:"years,omitempty"`
	Months int `yaml:"months,omitempty" json:"months,omitempty"`
	Days   int `yaml:"days,omitempty" json:"days,omitempty"`
}

// IsZero reports whether the validity is indefinite.
func (v Validity) IsZero() bool { return v.Years == 0 && v.Months == 0 && v.Days == 0 }

// Action is a business action an implementing department performs
// (licensing, tendering, credit …), on which measures act.
type Action struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	// FeedbackWorkingDays overrides follow_up.feedback_working_days for
	// this action, with the passage it rests on (followup.go).
	FeedbackWorkingDays int    `yaml:"feedback_working_days,omitempty" json:"feedback_working_days,omitempty"`
	FeedbackSource      string `yaml:"feedback_source,omitempty" json:"feedback_source,omitempty"`

	// eligible are the red-list measures governing the action that have
	// an eligibility condition, so that other actions look at none.
	eligible []*Measure
}

// List is a list an originating department maintains, with its rules.
type List struct {
	ID           string        `yaml:"id" json:"id"`
	Name         string        `yaml:"name" json:"name"`
	Kind         ListKind      `yaml:"kind" json:"kind"`
	SubjectKinds []SubjectKind `yaml:"subject_kinds" json:"subject_kinds"`
	// Validity counts from the publication date; zero means until revoked.
	Validity Validity `yaml:"validity,omitempty" json:"validity,omitzero"`
	// ObjectionWorkingDays is the deadline for verifying an objection.
	ObjectionWorkingDays int `yaml:"objection_working_days,omitempty" json:"objection_working_days,omitempty"`
	// Reaches lists the roles through which an organisation's entry also
	// reaches persons (落实到人); empty means it reaches nobody.
	Reaches []Role `yaml:"reaches,omitempty" json:"reaches,omitempty"`
	// RequiresFullCapacity: a person may be listed only with full civil
	// capacity, i.e. aged 18 or over at the decision date (篇四 第二条:
	// 本办法所称的个人,是指年满18周岁,具有完全民事行为能力的成年人).
	// Only lists holding persons may set it.
	RequiresFullCapacity bool `yaml:"requires_full_capacity,omitempty" json:"requires_full_capacity,omitempty"`
	// Source names the section of the source texts the rules come from.
	Source string `yaml:"source" json:"source"`
	// KeptByDepartment, when set, says that the list's records are kept
	// by the department that recorded them and not disclosed to other
	// callers (篇十三 第七条(二): a general-level urban-management record
	// is 由城管部门做好信用信息记录, while yellow and black records are
	// published and pushed, (四)(五)). A partner's check answer leaves
	// such an entry out unless one of the list's measures names it in the
	// decision (Finding.Disclosed); nil: the list's entries are disclosed.
	KeptByDepartment *Keeping `yaml:"kept_by_department,omitempty" json:"kept_by_department,omitempty"`

	// ObjectionExtendsValidity, when set, moves the end of validity (and of
	// a measure's own term) later by the time measures were suspended by
	// an objection that did not end the entry, quoting the passage that
	// says so (篇二 (三)2 "异议投诉被驳回的,其联合惩戒时限从异议投诉被驳回之日起
	// 继续计算"). Nil: validity counts from publication whatever objection
	// was filed (篇十二 第六条 "自公布之日起计算"; 篇四 第十四条 "有效期为1年。
	// 失信认定结果有效期届满,失信惩戒措施同时停止执行").
	ObjectionExtendsValidity *Keeping `yaml:"objection_extends_validity,omitempty" json:"objection_extends_validity,omitempty"`

	// Lifecycle rules (lifecycle.go), all optional data.
	Repair *RepairRule `yaml:"repair,omitempty" json:"repair,omitempty"`
	Exit   *ExitRule   `yaml:"exit,omitempty" json:"exit,omitempty"`
	// OnEnterRemoveFromKinds / OnEnterRemoveFromLists: entering this list
	// removes the subject from lists of these kinds / these lists
	// (篇七 第六条 black → red; 第七条 转入).
	OnEnterRemoveFromKinds []ListKind  `yaml:"on_enter_remove_from_kinds,omitempty" json:"on_enter_remove_from_kinds,omitempty"`
	OnEnterRemoveFromLists []string    `yaml:"on_enter_remove_from_lists,omitempty" json:"on_enter_remove_from_lists,omitempty"`
	Escalate               *Escalation `yaml:"escalate,omitempty" json:"escalate,omitempty"`
}

// Keeping is the passage by which a list's records stay with the
// department that recorded them.
type Keeping struct {
	// Text is the passage as the source gives it; LintCatalog checks that
	// it occurs in Source.
	Text   string `yaml:"text" json:"text"`
	Source string `yaml:"source" json:"source"`
}

// Disclosed reports whether the list's entries may be told to callers
// other than the recording department (see KeptByDepartment).
func (l *List) Disclosed() bool { return l.KeptByDepartment == nil }

// Measure is one entry of the measure catalogue (措施清单).
type Measure struct {
	ID      string   `yaml:"id" json:"id"`
	List    string   `yaml:"list" json:"list"`
	Actions []string `yaml:"actions" json:"actions"`
	Effect  Effect   `yaml:"effect" json:"effect"`
	// Mandatory is 强制性 (must be applied by law); otherwise 推荐性.
	Mandatory bool `yaml:"mandatory" json:"mandatory"`
	// AppliesTo says whom the measure acts on: the listed organisation, the
	// listed person, or persons reached through an organisation's entry.
	AppliesTo []SubjectKind `yaml:"applies_to" json:"applies_to"`
	// Roles, for person measures reached through an organisation, limits the
	// measure to these roles; empty means every role the list reaches.
	Roles []Role `yaml:"roles,omitempty" json:"roles,omitempty"`
	// PersonsThroughOrganization: the measure reaches persons only as
	// responsible persons of a listed organisation (Roles), never a person
	// listed in his own name. 篇三 三(七) "对严重失信企业及其法定代表人、主要
	// 负责人和对失信行为负有直接责任的注册执业人员等实施市场和行业禁入措施"
	// names persons only as the enterprise's; a person listed for his own
	// tax evasion is not an enterprise's 法定代表人. Requires person in
	// applies_to.
	PersonsThroughOrganization bool `yaml:"persons_through_organization,omitempty" json:"persons_through_organization,omitempty"`
	// Term, when set, is the measure's own duration from the entry's
	// publication, distinct from the entry's validity (篇三(七): 3年内不得担任;
	// 篇四 第十四条: 失信惩戒措施附带执行期限的,从其期限). Such a measure
	// applies until its term ends even when the entry has expired, and
	// stops when its term ends even when the entry lasts longer. It moves
	// later by objection suspensions only where the validity does
	// (List.ObjectionExtendsValidity).
	Term Validity `yaml:"term,omitempty" json:"term,omitzero"`
	// Text is the measure as written in the source (Chinese).
	Text       string `yaml:"text" json:"text"`
	LegalBasis string `yaml:"legal_basis" json:"legal_basis"`
	Authority  string `yaml:"authority" json:"authority"`
	Source     string `yaml:"source" json:"source"`
	// Scope limits where and on whom the measure binds; zero is national.
	Scope Scope `yaml:"scope,omitempty" json:"scope,omitzero"`
	// Placeholder says what the source leaves blank (e.g. an authority
	// written "***区"), so that no placeholder is served as if it were a name.
	Placeholder string `yaml:"placeholder,omitempty" json:"placeholder,omitempty"`
	// SourceFixes are the declared corrections of the source file's text
	// that Text relies on (OCR and extraction faults).
	SourceFixes []SourceFix `yaml:"source_fixes,omitempty" json:"source_fixes,omitempty"`
	// Eligibility, on a red-list measure, grants it also to a subject that
	// is on no red list but meets a condition the text names (篇三 二(一):
	// 连续三年无不良信用记录的行政相对人).
	Eligibility *Eligibility `yaml:"eligibility,omitempty" json:"eligibility,omitempty"`

	// scoped caches "Scope is not zero" for the decision's hot path, and
	// scopeNames the names its reasons quote (decision.go).
	scoped     bool
	scopeNames [4]string
}

// Eligibility is a condition under which a red-list measure applies without
// a red entry.
type Eligibility struct {
	// CleanRecordYears: no black-list entry in force and no violation
	// recorded within this many years before the check.
	CleanRecordYears int `yaml:"clean_record_years" json:"clean_record_years"`
	// Source is the passage that names the condition.
	Source string `yaml:"source" json:"source"`
}

// Catalog is the validated measure catalogue. It is immutable once loaded.
type Catalog struct {
	revision string
	actions  []Action
	lists    []List
	measures []Measure

	actionByID map[string]*Action
	listByID   map[string]*List
	// byListAction indexes measures by list then action for the decision.
	byListAction map[string]map[string][]*Measure
	// termLists holds the lists with a measure that has its own term, so
	// that the decision looks at their expired entries only.
	termLists map[string]bool
	// crossList holds the lists a cross-list rule involves (removing or
	// removed), so that creating entries elsewhere reads nothing more.
	crossList map[string]bool

	regions          []Region
	regionByCode     map[string]*Region
	industries       []Term
	industryByID     map[string]*Term
	subjectTypes     []Term
	subjectTypeByID  map[string]*Term
	employerTypes    []Term
	employerTypeByID map[string]*Term

	calendar *Calendar
	calSpec  CalendarSpec
	// holidays describes the holidays file laid over the calendar by
	// WithHolidays; zero when there is none.
	holidays HolidaysFile
	// origin says where the catalogue was loaded from (WithOrigin).
	origin      string
	ruleSets    []RuleSet
	items       []ViolationItem
	ruleSetByID map[string]*RuleSet
	itemByID    map[string]*ViolationItem
	// followUp: feedback deadlines and commitment kinds (followup.go).
	followUp FollowUpSpec
}

// catalogFile is the on-disk shape of one catalogue file; a file may hold
// any of the three sections.
type catalogFile struct {
	Actions        []Action        `yaml:"actions"`
	Lists          []List          `yaml:"lists"`
	Measures       []Measure       `yaml:"measures"`
	Calendar       *CalendarSpec   `yaml:"calendar"`
	RuleSets       []RuleSet       `yaml:"rule_sets"`
	ViolationItems []ViolationItem `yaml:"violation_items"`
	// Scope vocabularies (scope.go).
	Regions       []Region `yaml:"regions"`
	Industries    []Term   `yaml:"industries"`
	SubjectTypes  []Term   `yaml:"subject_types"`
	EmployerTypes []Term   `yaml:"employer_types"`
	// FollowUp: feedback and commitments (followup.go).
	FollowUp *FollowUpSpec `yaml:"follow_up"`
}

//go:embed catalog/*.yaml
var bundled embed.FS

// Sentinel errors of catalogue loading.
var (
	ErrCatalogInvalid = errors.New("invalid catalogue")
	ErrUnknownAction  = errors.New("unknown action")
	ErrUnknownList    = errors.New("unknown list")
)

// BundledCatalog loads the catalogue embedded in the binary.
func BundledCatalog() (*Catalog, error) {
	return LoadCatalog(BundledFiles())
}

// BundledFiles is the catalogue's files as embedded in the binary (*.yaml
// at its root), for copying out and reviewing: a copy loaded with
// LoadCatalog(os.DirFS(dir)) has the same revision until it is changed.
func BundledFiles() fs.FS {
	sub, err := fs.Sub(bundled, "catalog")
	if err != nil {
		panic("policy: the embedded catalogue has no catalog directory: " + err.Error())
	}
	return sub
}

// LoadCatalog reads every *.yaml file at the root of fsys, validates the
// whole and returns it. Errors name the file and the entry at fault. The
// revision is a digest of the files' names and contents, so the same data
// always has the same revision.
func LoadCatalog(fsys fs.FS) (*Catalog, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalogInvalid, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no *.yaml files", ErrCatalogInvalid)
	}
	sort.Strings(names)
	c := &Catalog{
		actionByID:   map[string]*Action{},
		listByID:     map[string]*List{},
		byListAction: map[string]map[string][]*Measure{},
	}
	type located struct {
		file string
		m    Measure
	}
	var measures []located
	listFile := map[string]string{}
	calFile, followUpFile := "", ""
	type locatedSet struct {
		file string
		rs   RuleSet
	}
	var sets []locatedSet
	type locatedItem struct {
		file string
		it   ViolationItem
	}
	var items []locatedItem
	digest := sha256.New()
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCatalogInvalid, name, err)
		}
		fmt.Fprintf(digest, "%s\x00%d\x00", path.Base(name), len(data))
		digest.Write(data)
		var f catalogFile
		if err := decodeYAML(data, &f); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCatalogInvalid, name, err)
		}
		for _, a := range f.Actions {
			if a.ID == "" || a.Name == "" {
				return nil, fmt.Errorf("%w: %s: action %q: id and name are required", ErrCatalogInvalid, name, a.ID)
			}
			if _, dup := c.actionByID[a.ID]; dup {
				return nil, fmt.Errorf("%w: %s: action %q defined twice", ErrCatalogInvalid, name, a.ID)
			}
			c.actions = append(c.actions, a)
			c.actionByID[a.ID] = &c.actions[len(c.actions)-1]
		}
		for _, l := range f.Lists {
			if err := validateList(l); err != nil {
				return nil, fmt.Errorf("%w: %s: list %q: %w", ErrCatalogInvalid, name, l.ID, err)
			}
			if _, dup := c.listByID[l.ID]; dup {
				return nil, fmt.Errorf("%w: %s: list %q defined twice", ErrCatalogInvalid, name, l.ID)
			}
			c.lists = append(c.lists, l)
			c.listByID[l.ID] = nil // placeholder until the slice stops growing
			listFile[l.ID] = name
		}
		for _, m := range f.Measures {
			measures = append(measures, located{name, m})
		}
		if f.Calendar != nil {
			if calFile != "" {
				return nil, fmt.Errorf("%w: %s: calendar already defined in %s", ErrCatalogInvalid, name, calFile)
			}
			calFile = name
			c.calSpec = *f.Calendar
		}
		for _, rs := range f.RuleSets {
			sets = append(sets, locatedSet{name, rs})
		}
		for _, it := range f.ViolationItems {
			items = append(items, locatedItem{name, it})
		}
		for _, r := range f.Regions {
			if err := ValidRegion(r.Code); err != nil || r.Name == "" {
				return nil, fmt.Errorf("%w: %s: region %q: a 6-digit code and a name are required", ErrCatalogInvalid, name, r.Code)
			}
		}
		c.regions = append(c.regions, f.Regions...)
		c.industries = append(c.industries, f.Industries...)
		c.subjectTypes = append(c.subjectTypes, f.SubjectTypes...)
		c.employerTypes = append(c.employerTypes, f.EmployerTypes...)
		if f.FollowUp != nil {
			if followUpFile != "" {
				return nil, fmt.Errorf("%w: %s: follow_up already defined in %s", ErrCatalogInvalid, name, followUpFile)
			}
			followUpFile, c.followUp = name, *f.FollowUp
		}
	}
	c.regionByCode = make(map[string]*Region, len(c.regions))
	for i := range c.regions {
		if _, dup := c.regionByCode[c.regions[i].Code]; dup {
			return nil, fmt.Errorf("%w: region %s defined twice", ErrCatalogInvalid, c.regions[i].Code)
		}
		c.regionByCode[c.regions[i].Code] = &c.regions[i]
	}
	for _, v := range []struct {
		what  string
		terms []Term
		idx   *map[string]*Term
	}{
		{"industry", c.industries, &c.industryByID},
		{"subject type", c.subjectTypes, &c.subjectTypeByID},
		{"employer type", c.employerTypes, &c.employerTypeByID},
	} {
		idx, err := indexTerms(v.what, v.terms)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCatalogInvalid, err)
		}
		*v.idx = idx
	}
	if calFile == "" {
		// A catalogue without a calendar counts weekends only.
		c.calSpec = CalendarSpec{UTCOffsetHours: 8, Source: "weekends only (no calendar in the catalogue)"}
	}
	cal, err := NewCalendar(c.calSpec)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: calendar: %w", ErrCatalogInvalid, calFile, err)
	}
	c.calendar = cal
	// Pointers into the slices are taken only once they stop growing.
	c.actionByID = make(map[string]*Action, len(c.actions))
	for i := range c.actions {
		c.actionByID[c.actions[i].ID] = &c.actions[i]
	}
	for i := range c.lists {
		c.listByID[c.lists[i].ID] = &c.lists[i]
	}
	seen := map[string]string{}
	c.measures = make([]Measure, 0, len(measures))
	for _, lm := range measures {
		if prev, dup := seen[lm.m.ID]; dup {
			return nil, fmt.Errorf("%w: %s: measure %q already defined in %s", ErrCatalogInvalid, lm.file, lm.m.ID, prev)
		}
		seen[lm.m.ID] = lm.file
		if err := c.validateMeasure(lm.m); err != nil {
			return nil, fmt.Errorf("%w: %s: measure %q: %w", ErrCatalogInvalid, lm.file, lm.m.ID, err)
		}
		c.measures = append(c.measures, lm.m)
	}
	for i := range c.measures {
		m := &c.measures[i]
		byAction := c.byListAction[m.List]
		if byAction == nil {
			byAction = map[string][]*Measure{}
			c.byListAction[m.List] = byAction
		}
		for _, a := range m.Actions {
			byAction[a] = append(byAction[a], m)
		}
	}
	c.termLists = map[string]bool{}
	for i := range c.measures {
		m := &c.measures[i]
		if !m.Term.IsZero() {
			c.termLists[m.List] = true
		}
		s := &m.Scope
		m.scoped = len(s.Regions) > 0 || len(s.Industries) > 0 || len(s.SubjectTypes) > 0 || len(s.EmployerTypes) > 0
		if m.scoped {
			m.scopeNames = c.scopeNames(*s)
		}
		if m.Eligibility != nil {
			for _, a := range m.Actions {
				c.actionByID[a].eligible = append(c.actionByID[a].eligible, m)
			}
		}
	}
	c.ruleSetByID = map[string]*RuleSet{}
	for _, ls := range sets {
		if _, dup := c.ruleSetByID[ls.rs.ID]; dup {
			return nil, fmt.Errorf("%w: %s: rule set %q defined twice", ErrCatalogInvalid, ls.file, ls.rs.ID)
		}
		c.ruleSets = append(c.ruleSets, ls.rs)
		c.ruleSetByID[ls.rs.ID] = nil
	}
	for i := range c.ruleSets {
		c.ruleSetByID[c.ruleSets[i].ID] = &c.ruleSets[i]
	}
	for i, ls := range sets {
		if err := c.validateRuleSet(&c.ruleSets[i]); err != nil {
			return nil, fmt.Errorf("%w: %s: rule set %q: %w", ErrCatalogInvalid, ls.file, ls.rs.ID, err)
		}
	}
	c.itemByID = map[string]*ViolationItem{}
	for _, li := range items {
		if _, dup := c.itemByID[li.it.ID]; dup {
			return nil, fmt.Errorf("%w: %s: violation item %q defined twice", ErrCatalogInvalid, li.file, li.it.ID)
		}
		if err := c.validateItem(li.it); err != nil {
			return nil, fmt.Errorf("%w: %s: violation item %q: %w", ErrCatalogInvalid, li.file, li.it.ID, err)
		}
		c.items = append(c.items, li.it)
		c.itemByID[li.it.ID] = nil
	}
	for i := range c.items {
		c.itemByID[c.items[i].ID] = &c.items[i]
	}
	// List rules refer to other lists and to rule sets, so they are
	// checked once everything is loaded.
	for i := range c.lists {
		if err := c.validateListRules(&c.lists[i]); err != nil {
			return nil, fmt.Errorf("%w: %s: list %q: %w", ErrCatalogInvalid, listFile[c.lists[i].ID], c.lists[i].ID, err)
		}
	}
	c.indexCrossList()
	if err := validateFollowUp(&c.followUp, c.actions, c.ruleSetByID); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCatalogInvalid, followUpFile, err)
	}
	if err := c.validateFacilitations(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCatalogInvalid, followUpFile, err)
	}
	c.revision = "cat-" + hex.EncodeToString(digest.Sum(nil))[:16]
	return c, nil
}

// decodeYAML decodes a catalogue or holidays file strictly (unknown fields
// refused). The YAML decoder panics on some malformed input (found by
// FuzzWithHolidays), and these files now come from outside the binary
// (--catalog, --holidays), so a panic is turned into an error.
func decodeYAML(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML (%v)", r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, v, yaml.DisallowUnknownField())
}

func validateList(l List) error {
	if l.ID == "" || l.Name == "" || l.Source == "" {
		return errors.New("id, name and source are required")
	}
	if !l.Kind.valid() {
		return fmt.Errorf("unknown kind %q", l.Kind)
	}
	if len(l.SubjectKinds) == 0 {
		return errors.New("subject_kinds is required")
	}
	for _, k := range l.SubjectKinds {
		if k != KindOrganization && k != KindPerson {
			return fmt.Errorf("unknown subject kind %q", k)
		}
	}
	if l.Validity.Years < 0 || l.Validity.Months < 0 || l.Validity.Days < 0 {
		return errors.New("validity must not be negative")
	}
	if l.ObjectionWorkingDays < 0 {
		return errors.New("objection_working_days must not be negative")
	}
	for _, r := range l.Reaches {
		if !r.valid() {
			return fmt.Errorf("unknown role %q", r)
		}
	}
	if l.RequiresFullCapacity && !slices.Contains(l.SubjectKinds, KindPerson) {
		return errors.New("requires_full_capacity applies to persons, but the list holds none")
	}
	if k := l.KeptByDepartment; k != nil && (strings.TrimSpace(k.Text) == "" || strings.TrimSpace(k.Source) == "") {
		return errors.New("kept_by_department: text and source are required")
	}
	if k := l.ObjectionExtendsValidity; k != nil && (strings.TrimSpace(k.Text) == "" || strings.TrimSpace(k.Source) == "") {
		return errors.New("objection_extends_validity: text and source are required")
	}
	return nil
}

func (c *Catalog) validateMeasure(m Measure) error {
	if m.ID == "" || strings.TrimSpace(m.Text) == "" || m.LegalBasis == "" || m.Authority == "" || m.Source == "" {
		return errors.New("id, text, legal_basis, authority and source are required")
	}
	l, ok := c.listByID[m.List]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownList, m.List)
	}
	if len(m.Actions) == 0 {
		return errors.New("actions is required")
	}
	for _, a := range m.Actions {
		if _, ok := c.actionByID[a]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownAction, a)
		}
	}
	if !m.Effect.Valid() {
		return fmt.Errorf("unknown effect %q", m.Effect)
	}
	if (m.Effect == EffectIncentive) != (l.Kind == ListRed) {
		return fmt.Errorf("effect %q does not fit list kind %q", m.Effect, l.Kind)
	}
	if len(m.AppliesTo) == 0 {
		return errors.New("applies_to is required")
	}
	for _, k := range m.AppliesTo {
		if k != KindOrganization && k != KindPerson {
			return fmt.Errorf("unknown subject kind %q in applies_to", k)
		}
	}
	if m.PersonsThroughOrganization && !slices.Contains(m.AppliesTo, KindPerson) {
		return errors.New("persons_through_organization requires person in applies_to")
	}
	if m.PersonsThroughOrganization && len(l.Reaches) == 0 {
		return fmt.Errorf("persons_through_organization: list %q reaches no persons", l.ID)
	}
	for _, r := range m.Roles {
		if !r.valid() {
			return fmt.Errorf("unknown role %q", r)
		}
		if !slices.Contains(l.Reaches, r) {
			return fmt.Errorf("role %q is not reached by list %q", r, l.ID)
		}
	}
	if m.Term.Years < 0 || m.Term.Months < 0 || m.Term.Days < 0 {
		return errors.New("term must not be negative")
	}
	if err := c.validateScope(m.Scope); err != nil {
		return err
	}
	for _, f := range m.SourceFixes {
		if f.From == "" || f.To == "" || f.Why == "" {
			return errors.New("source_fixes: from, to and why are required")
		}
	}
	if m.Eligibility != nil {
		if m.Effect != EffectIncentive {
			return errors.New("eligibility applies only to incentive measures")
		}
		if m.Eligibility.CleanRecordYears <= 0 || m.Eligibility.Source == "" {
			return errors.New("eligibility: clean_record_years > 0 and source are required")
		}
	}
	return nil
}

// Revision identifies the catalogue's content; it appears in every answer.
func (c *Catalog) Revision() string { return c.revision }

// HolidaysFile describes a holidays file laid over the catalogue's
// calendar.
type HolidaysFile struct {
	// Name is the file's name as given.
	Name string `json:"name"`
	// Digest is "sha256:" and the hex SHA-256 of the file's bytes.
	Digest string `json:"digest"`
	// Covers are the years the file adds.
	Covers []int `json:"covers"`
	// BaseRevision is the revision of the catalogue before the file.
	BaseRevision string `json:"base_revision"`
}

// WithOrigin returns a copy of c that says where it was loaded from:
// "embedded", or the directory of a reviewed catalogue. It is recorded in
// the evidence log when a server starts with the catalogue; the revision
// does not change with it, since the content does not.
func (c *Catalog) WithOrigin(origin string) *Catalog {
	out := *c
	out.origin = origin
	return &out
}

// Origin says where the catalogue was loaded from, as WithOrigin set it;
// "" when nobody said.
func (c *Catalog) Origin() string { return c.origin }

// Holidays describes the holidays file laid over the calendar, or the zero
// value when the calendar is the catalogue's own.
func (c *Catalog) Holidays() HolidaysFile { return c.holidays }

// WithHolidays returns a copy of c whose calendar also covers the years of
// a holidays file: YAML with a `calendar` section of the same shape as the
// catalogue's (calendar.yaml), for years the catalogue does not cover yet
// (MergeCalendar refuses overlaps and conflicts). The copy's revision
// changes with the file, since deadlines do; Holidays describes the file.
// Errors wrap ErrCatalogInvalid and name the file.
func (c *Catalog) WithHolidays(name string, data []byte) (*Catalog, error) {
	var f struct {
		Calendar *CalendarSpec `yaml:"calendar"`
	}
	if err := decodeYAML(data, &f); err != nil {
		return nil, fmt.Errorf("%w: holidays file %s: %w", ErrCatalogInvalid, name, err)
	}
	if f.Calendar == nil {
		return nil, fmt.Errorf("%w: holidays file %s: no calendar section", ErrCatalogInvalid, name)
	}
	spec, err := MergeCalendar(c.calSpec, *f.Calendar)
	if err != nil {
		return nil, fmt.Errorf("%w: holidays file %s: %w", ErrCatalogInvalid, name, err)
	}
	cal, err := NewCalendar(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: holidays file %s: %w", ErrCatalogInvalid, name, err)
	}
	sum := sha256.Sum256(data)
	out := *c // the indexes are immutable and may be shared
	out.calendar, out.calSpec = cal, spec
	out.holidays = HolidaysFile{Name: name, Digest: "sha256:" + hex.EncodeToString(sum[:]), Covers: slices.Clone(f.Calendar.Covers), BaseRevision: c.revision}
	rev := sha256.New()
	fmt.Fprintf(rev, "%s\x00holidays\x00", c.revision)
	rev.Write(data)
	out.revision = "cat-" + hex.EncodeToString(rev.Sum(nil))[:16]
	return &out, nil
}

// Calendar returns the working-day calendar.
func (c *Catalog) Calendar() *Calendar { return c.calendar }

// CalendarSpec returns the calendar as declared (catalogue view).
func (c *Catalog) CalendarSpec() CalendarSpec { return c.calSpec }

// RuleSets returns the points rule sets in catalogue order.
func (c *Catalog) RuleSets() []RuleSet { return c.ruleSets }

// ViolationItems returns the violation items in catalogue order.
func (c *Catalog) ViolationItems() []ViolationItem { return c.items }

// RuleSet returns the rule set with the given id.
func (c *Catalog) RuleSet(id string) (RuleSet, bool) {
	rs, ok := c.ruleSetByID[id]
	if !ok {
		return RuleSet{}, false
	}
	return *rs, true
}

// Actions returns the business actions in catalogue order.
func (c *Catalog) Actions() []Action { return c.actions }

// Lists returns the lists in catalogue order.
func (c *Catalog) Lists() []List { return c.lists }

// Measures returns every measure in catalogue order.
func (c *Catalog) Measures() []Measure { return c.measures }

// Action returns the action with the given id.
func (c *Catalog) Action(id string) (Action, bool) {
	a, ok := c.actionByID[id]
	if !ok {
		return Action{}, false
	}
	return *a, true
}

// List returns the list with the given id.
func (c *Catalog) List(id string) (List, bool) {
	l, ok := c.listByID[id]
	if !ok {
		return List{}, false
	}
	return *l, true
}

// ListDisclosed reports whether entries on list may be told to callers
// other than the department that recorded them: false for a list whose
// records it keeps (List.KeptByDepartment) and for a list the catalogue
// does not have, whose entries no check answers either. A partner's
// check answer applies it through Finding.Disclosed; events and any other
// view given to partners apply it with this.
func (c *Catalog) ListDisclosed(list string) bool {
	l, ok := c.listByID[list]
	return ok && l.Disclosed()
}

// HasEligibility reports whether a measure governing action has an
// eligibility condition, i.e. whether a check for it needs the subject's
// violation records.
func (c *Catalog) HasEligibility(action string) bool {
	a, ok := c.actionByID[action]
	return ok && len(a.eligible) > 0
}

// measuresFor returns the measures of list that govern action.
func (c *Catalog) measuresFor(list, action string) []*Measure {
	return c.byListAction[list][action]
}
