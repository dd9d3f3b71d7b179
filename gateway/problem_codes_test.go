package gateway_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestProblemCodesMatchContract collects every problem code the gateway
// can answer with, from its source, and compares them with the Problem
// schema of openapi.yaml in both directions: each code emitted is in the
// schema's enum and its table, with the table's status; each code of the
// enum is emitted somewhere (a code documented but never sent is a
// promise clients cannot test, or a leftover of a removed answer).
//
// Codes are read from the syntax tree rather than by running problemFor,
// so that the codes set outside it (the decoders, the token endpoint, the
// middleware) are found too. A code passed through a variable is
// followed where it comes from a literal of a struct's `code` field or a
// function's `code` parameter; any other indirection fails the test, so
// that a new one is not missed silently.
func TestProblemCodesMatchContract(t *testing.T) {
	emitted := emittedCodes(t)

	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.model.Components.Schemas.Get("Problem")
	if !ok {
		t.Fatal("no Problem schema in openapi.yaml")
	}
	schema := p.Schema()
	enum := map[string]bool{}
	if code, ok := schema.Properties.Get("code"); ok {
		for _, n := range code.Schema().Enum {
			enum[n.Value] = true
		}
	}
	table := map[string]int{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\| ([0-9]{3}) \\|").FindAllStringSubmatch(schema.Description, -1) {
		status, _ := strconv.Atoi(m[2])
		table[m[1]] = status
	}
	if len(enum) == 0 || len(table) == 0 {
		t.Fatalf("the Problem schema has %d enum codes and %d table rows", len(enum), len(table))
	}

	for _, code := range sortedKeys(emitted) {
		e := emitted[code]
		if !enum[code] {
			t.Errorf("%s: code %q is answered but not in the Problem schema's code enum", e.where, code)
		}
		want, documented := table[code]
		switch {
		case !documented:
			t.Errorf("%s: code %q is answered but not in the Problem schema's table", e.where, code)
		case len(e.statuses) > 1:
			t.Errorf("code %q is answered with several statuses %v (%s): a code has one status", code, e.statuses, e.where)
		case len(e.statuses) == 1 && e.statuses[0] != want:
			t.Errorf("%s: code %q is answered with %d, the table says %d", e.where, code, e.statuses[0], want)
		}
	}
	for _, code := range sortedKeys(enum) {
		if _, ok := emitted[code]; !ok {
			t.Errorf("code %q is in the Problem schema's enum but the gateway never answers with it", code)
		}
	}
	for _, code := range sortedKeys(table) {
		if !enum[code] {
			t.Errorf("code %q is in the Problem schema's table but not in its enum", code)
		}
	}
	t.Logf("%d problem codes, answered and documented alike", len(emitted))
}

// emission is where a code is set, and with which statuses (when the
// status is a net/http constant at the call).
type emission struct {
	where    string
	statuses []int
}

// statusByName maps net/http's Status constants of errors to their values:
// the constant's name is its reason phrase without spaces.
func statusByName() map[string]int {
	m := map[string]int{}
	for code := 400; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			m["Status"+strings.NewReplacer(" ", "", "-", "").Replace(text)] = code
		}
	}
	return m
}

// emittedCodes reads gateway/*.go (not tests) for the calls of
// problem(status, code, …) and of the helpers that take a `code`
// parameter and pass it on.
func emittedCodes(t *testing.T) map[string]*emission {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, af)
	}
	statuses := statusByName()
	out := map[string]*emission{}
	add := func(code string, status ast.Expr, pos token.Pos) {
		e := out[code]
		if e == nil {
			e = &emission{where: fset.Position(pos).String()}
			out[code] = e
		}
		if sel, ok := status.(*ast.SelectorExpr); ok {
			if v, ok := statuses[sel.Sel.Name]; ok && !slices.Contains(e.statuses, v) {
				e.statuses = append(e.statuses, v)
			}
		}
	}

	// The functions that take a code as their second parameter named
	// `code` after a status: problem itself and local helpers such as the
	// token endpoint's oauthProblem.
	forwarders := map[string]bool{"problem": true}
	for _, af := range parsed {
		ast.Inspect(af, func(n ast.Node) bool {
			var name string
			var ft *ast.FuncType
			switch n := n.(type) {
			case *ast.FuncDecl:
				name, ft = n.Name.Name, n.Type
			case *ast.AssignStmt:
				if len(n.Lhs) == 1 && len(n.Rhs) == 1 {
					if id, ok := n.Lhs[0].(*ast.Ident); ok {
						if fl, ok := n.Rhs[0].(*ast.FuncLit); ok {
							name, ft = id.Name, fl.Type
						}
					}
				}
			}
			if ft != nil && secondParamIsCode(ft) && name != "" {
				forwarders[name] = true
			}
			return true
		})
	}

	for _, af := range parsed {
		// Literals of struct fields named `code`, for codes chosen from a
		// table (a `v.code` argument).
		var tableCodes []*ast.BasicLit
		ast.Inspect(af, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			at, ok := cl.Type.(*ast.ArrayType)
			if !ok {
				return true
			}
			st, ok := at.Elt.(*ast.StructType)
			if !ok {
				return true
			}
			idx := fieldIndex(st, "code")
			if idx < 0 {
				return true
			}
			for _, el := range cl.Elts {
				row, ok := el.(*ast.CompositeLit)
				if !ok || idx >= len(row.Elts) {
					continue
				}
				if lit, ok := row.Elts[idx].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					tableCodes = append(tableCodes, lit)
				}
			}
			return true
		})

		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			fn, ok := call.Fun.(*ast.Ident)
			if !ok || !forwarders[fn.Name] || len(call.Args) < 2 {
				return true
			}
			switch arg := call.Args[1].(type) {
			case *ast.BasicLit:
				code, err := strconv.Unquote(arg.Value)
				if err != nil || arg.Kind != token.STRING {
					t.Errorf("%s: the code of %s is not a string", fset.Position(arg.Pos()), fn.Name)
					return true
				}
				add(code, call.Args[0], arg.Pos())
			case *ast.Ident:
				// A forwarder passing its own `code` parameter on: its
				// callers' literals are collected at their calls.
				if arg.Name != "code" {
					t.Errorf("%s: %s's code comes from %s, which this test cannot follow", fset.Position(arg.Pos()), fn.Name, arg.Name)
				}
			case *ast.SelectorExpr:
				if arg.Sel.Name != "code" || len(tableCodes) == 0 {
					t.Errorf("%s: %s's code comes from a field this test cannot follow", fset.Position(arg.Pos()), fn.Name)
					return true
				}
				for _, lit := range tableCodes {
					code, _ := strconv.Unquote(lit.Value)
					add(code, call.Args[0], lit.Pos())
				}
			default:
				t.Errorf("%s: %s's code is an expression this test cannot follow", fset.Position(call.Args[1].Pos()), fn.Name)
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("found no problem codes in gateway/*.go")
	}
	return out
}

// secondParamIsCode: func(status int, code string, …).
func secondParamIsCode(ft *ast.FuncType) bool {
	var names []string
	for _, f := range ft.Params.List {
		for _, n := range f.Names {
			names = append(names, n.Name)
		}
	}
	return len(names) >= 2 && names[1] == "code"
}

// fieldIndex is the position of a named field in a struct type, -1 if
// it has none.
func fieldIndex(st *ast.StructType, name string) int {
	i := 0
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 {
			i++
			continue
		}
		for _, n := range f.Names {
			if n.Name == name {
				return i
			}
			i++
		}
	}
	return -1
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
