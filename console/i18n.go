package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The message catalogues: one JSON object of key → text per language.
// Chinese is the default; English is there for those who want it.
//
//go:embed locales/*.json
var localeFS embed.FS

// Languages the console speaks, the default first.
var languages = []string{"zh", "en"}

// catalogues maps a language to its messages.
type catalogues map[string]map[string]string

func loadCatalogues() (catalogues, error) {
	out := catalogues{}
	for _, lang := range languages {
		b, err := localeFS.ReadFile("locales/" + lang + ".json")
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("locales/%s.json: %w", lang, err)
		}
		out[lang] = m
	}
	return out, nil
}

// text is the message key in lang, with args filled in (fmt verbs); a key
// missing from lang falls back to Chinese, then to the key itself, so a
// gap shows rather than breaks the page.
func (c catalogues) text(lang, key string, args ...any) string {
	msg, ok := c[lang][key]
	if !ok {
		if msg, ok = c[languages[0]][key]; !ok {
			msg = key
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// has reports whether lang has a message for key.
func (c catalogues) has(lang, key string) bool {
	_, ok := c[lang][key]
	return ok
}

// language picks the page's language: the one chosen in the console (a
// cookie), else English when the browser prefers it to Chinese, else
// Chinese.
func language(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && validLanguage(ck.Value) {
		return ck.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return "zh"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return languages[0]
}

func validLanguage(l string) bool {
	for _, v := range languages {
		if v == l {
			return true
		}
	}
	return false
}
