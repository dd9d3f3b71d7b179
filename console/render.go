package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

//go:embed templates
var templateFS embed.FS

// pageNames are the templates, each rendered inside layout.html.
var pageNames = []string{"signin", "refused", "overview", "subjects", "entries", "entry", "proceedings",
	"partners", "partner", "evidence"}

type pageTemplate struct{ t *template.Template }

var templateFuncs = template.FuncMap{
	"join": strings.Join,
	"list": func(v ...string) []string { return v },
	// has reports whether a submitted form's values hold v (refilling
	// ticked boxes and chosen options after a refusal).
	"has": func(vs []string, v string) bool { return slices.Contains(vs, v) },
	// refsOf passes evidence references with the page to the "refs"
	// template, which lists them in the page's way.
	"refsOf": func(refs []string, p *page) refsArg { return refsArg{Refs: refs, Page: p} },
}

type refsArg struct {
	Refs []string
	Page *page
}

func parsePages() (map[string]*pageTemplate, error) {
	out := map[string]*pageTemplate{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = &pageTemplate{t: t}
	}
	return out, nil
}

// userView is the signed-in user as pages show it.
type userView struct {
	ClientID, Name, Role string
	Admin                bool
}

// problemView is an error as a page shows it: the API's problem, in the
// page's language where the catalogue has words for its code.
type problemView struct {
	Status              int
	Code, Title, Detail string
	Field               string
	Lines               []gateway.ProblemLine
}

// page is what every template gets.
type page struct {
	Lang   string
	Screen string
	Path   string
	User   *userView
	CSRF   string
	Error  *problemView
	Notice string
	Data   any

	msgs catalogues
	zone *time.Location
	cat  *policy.Catalog
}

// T is the message key in the page's language.
func (p *page) T(key string, args ...any) string { return p.msgs.text(p.Lang, key, args...) }

// Enum is a stored value (an entry's status, a proceeding's state, a
// partner's visibility …) in the page's words: the message prefix.value.
// A value the catalogues have no words for shows as it is, not as a key,
// so that a value added later is still readable.
func (p *page) Enum(prefix string, v any) string {
	key := prefix + "." + fmt.Sprint(v)
	if !p.msgs.has(languages[0], key) {
		return fmt.Sprint(v)
	}
	return p.T(key)
}

// ListName is a list's name from the measure catalogue (the catalogue
// names lists in Chinese only, so both languages show that name; pages
// give the id beside it for those who need it); an id the catalogue does
// not know shows as it is.
func (p *page) ListName(id string) string {
	if p.cat != nil {
		if l, ok := p.cat.List(id); ok && l.Name != "" {
			return l.Name
		}
	}
	return id
}

// ActionName is a business action's name from the measure catalogue, as
// ListName.
func (p *page) ActionName(id string) string {
	if p.cat != nil {
		if a, ok := p.cat.Action(id); ok && a.Name != "" {
			return a.Name
		}
	}
	return id
}

// ActionNames are actions' names, in the page's way of listing.
func (p *page) ActionNames(ids []string) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = p.ActionName(id)
	}
	sep := "、"
	if p.Lang == "en" {
		sep = ", "
	}
	return strings.Join(names, sep)
}

// notice is the done.* message for an act just done, or "" for a key the
// catalogues do not have: ?done= comes from the address bar, and the page
// shows only what the console itself says.
func (p *page) notice(done string) string {
	key := "done." + done
	if done == "" || !p.msgs.has(languages[0], key) {
		return ""
	}
	return p.T(key)
}

// Time shows a time (time.Time or *time.Time) in the offices' zone, to
// the second: a deadline moved by an objection's few seconds shows.
func (p *page) Time(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return "—"
		}
		t = *x
	default:
		return ""
	}
	if t.IsZero() {
		return "—"
	}
	return t.In(p.zone).Format("2006-01-02 15:04:05")
}

// Other is the language the page offers to switch to.
func (p *page) Other() string {
	if p.Lang == "en" {
		return "zh"
	}
	return "en"
}

func (c *Console) newPage(r *http.Request, s *session, screen string) *page {
	p := &page{Lang: language(r), Screen: screen, Path: r.URL.RequestURI(), msgs: c.msgs, zone: c.zone}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// The page answers a POST, whose path may answer nothing else:
		// the language switch goes back to the screen's page (handlers
		// that answer on a narrower page, an entry's, set Path to it).
		p.Path = screenPath(screen)
	}
	if c.deps.Checker != nil { // nil only in tests of the console's own parts
		p.cat = c.deps.Checker.Catalog()
	}
	if s != nil {
		p.User = &userView{ClientID: s.clientID, Name: s.name, Role: string(s.role), Admin: s.role == service.RoleAdmin}
		p.CSRF = s.csrf
	}
	return p
}

// render executes a page into a buffer first, so that a template error
// never leaves half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := c.pages[name].t.ExecuteTemplate(&buf, "layout", p); err != nil {
		c.logger.Error("console template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem turns an error into the API's problem, in the page's words.
func (c *Console) problem(lang string, err error) *problemView {
	pr := gateway.ProblemFor(err)
	v := &problemView{Status: pr.Status, Code: pr.Code, Title: pr.Title, Detail: pr.Detail, Field: pr.Field, Lines: pr.Errors}
	if c.msgs.has(lang, "problem."+pr.Code) {
		v.Title = c.msgs.text(lang, "problem."+pr.Code)
	}
	if pr.Status >= http.StatusInternalServerError {
		v.Detail = "" // internal details stay in the log
	}
	return v
}

// fail answers an error that leaves nothing to show but the error.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	p := c.newPage(r, s, "refused")
	p.Error = c.problem(p.Lang, err)
	if p.Error.Status >= http.StatusInternalServerError {
		c.logger.Error("console request failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, p.Error.Status, "refused", p)
}

// screenPath is the page (answering GET) of a screen.
func screenPath(screen string) string {
	switch screen {
	case "signin", "overview", "subjects", "entries", "proceedings", "partners", "evidence":
		return "/console/" + screen
	}
	return "/console/overview"
}

// refuse answers a refusal of the console's own (CSRF, role, session).
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, s *session, status int, key string, args ...any) {
	c.refuseWithBack(w, r, s, status, key, "", args...)
}

// refusedData is what a refusal page offers besides the overview: the
// page to go on to (a partner's, say), when there is one.
type refusedData struct{ Back string }

// refuseWithBack is refuse with a link on to back (a page of the console).
func (c *Console) refuseWithBack(w http.ResponseWriter, r *http.Request, s *session, status int, key, back string, args ...any) {
	p := c.newPage(r, s, "refused")
	p.Error = &problemView{Status: status, Title: c.msgs.text(p.Lang, key, args...)}
	if back != "" {
		p.Path = back
		p.Data = &refusedData{Back: back}
	}
	c.render(w, status, "refused", p)
}
