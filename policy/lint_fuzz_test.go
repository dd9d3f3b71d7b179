package policy

import (
	"strings"
	"testing"
)

// Source references and texts come from catalogue files an administrator
// supplies (credgate catalog lint DIR): locating and matching must never
// panic, and a text found must lie in the section located.
func FuzzLintSection(f *testing.F) {
	f.Add("篇一 三(七)2", "第一条对企业,依法限制。三、(七)1、甲;2、乙。", "乙")
	f.Add("篇一 第八条(二)(1)", "第八条(二)(1)城市管理部门加大管理检查频次;(2)", "加大…频次。")
	f.Add("篇一 十十十十(九十九)", "九十九、", "…")
	f.Add("篇一 第一百条", "第一百条", "x")
	f.Fuzz(func(t *testing.T, ref, block, text string) {
		src := &sourceTexts{blocks: map[string]string{"篇一": normalize(block)}, all: normalize(block)}
		sections, err := src.sections(ref)
		if err != nil {
			return
		}
		for _, s := range sections {
			if !strings.Contains(src.blocks["篇一"], s) {
				t.Fatalf("section %q is not part of the block", s)
			}
			matchText(text, s)
		}
		_ = checkVerb(EffectRestrict, normalize(text))
	})
}
