// The console's progressive enhancements; every page works without them.
"use strict";

(() => {
  // Identifier checks as you type, the same rules the server applies
  // (policy/ident.go): the 18-character USCC with its GB 32100 check
  // character, or the 18-digit citizen ID number with its GB 11643 check
  // digit. The server remains the judge; this only says so sooner.
  const USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  const USCC_W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  const ID_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const ID_C = "10X98765432";

  function checkSubject(v) {
    v = v.trim().toUpperCase();
    if (v === "") return "";
    if (v.length !== 18) return "len";
    if (/^\d{17}[\dX]$/.test(v)) {
      let s = 0;
      for (let i = 0; i < 17; i++) s += (v.charCodeAt(i) - 48) * ID_W[i];
      if (ID_C[s % 11] === v[17]) return "ok";
      // Not a valid ID number: it may still be a USCC of digits.
    }
    let s = 0;
    for (let i = 0; i < 17; i++) {
      const c = USCC.indexOf(v[i]);
      if (c < 0) return "charset";
      s += c * USCC_W[i];
    }
    return USCC[(31 - (s % 31)) % 31] === v[17] ? "ok" : "check";
  }

  const words = {
    zh: { ok: "✓ 校验通过", len: "应为 18 位", charset: "含有不允许的字符", check: "校验位不正确" },
    en: { ok: "✓ valid", len: "must be 18 characters", charset: "has a character not allowed", check: "wrong check character" },
  };

  document.addEventListener("DOMContentLoaded", () => {
    const lang = document.documentElement.lang === "en" ? "en" : "zh";
    for (const input of document.querySelectorAll("input[data-validate=subject]")) {
      const out = document.querySelector(".validity[data-for='" + input.id + "']");
      const update = () => {
        const r = checkSubject(input.value);
        input.setCustomValidity(r === "" || r === "ok" ? "" : words[lang][r]);
        if (out) {
          out.textContent = r ? words[lang][r] : "";
          out.className = "validity " + (r === "ok" ? "ok" : r ? "bad" : "");
        }
      };
      input.addEventListener("input", update);
      update();
    }

    // Copy buttons (the new partner's secret).
    for (const b of document.querySelectorAll("button[data-copy]")) {
      b.addEventListener("click", async () => {
        const src = document.getElementById(b.dataset.copy);
        src.select();
        try {
          await navigator.clipboard.writeText(src.value);
        } catch (e) {
          document.execCommand("copy");
        }
        const done = document.getElementById("copied");
        if (done) done.hidden = false;
      });
    }

    // Upload progress for imports: the form is sent by XHR to show
    // progress, and the answer replaces the page as a plain submit would.
    for (const form of document.querySelectorAll("form[data-progress]")) {
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        // A file over the console's limit is refused here, before it is
        // sent: the server stops reading at the limit and closes the
        // connection, which a browser may show as a reset, not the page.
        const file = form.querySelector("input[type=file]");
        const max = Number(form.dataset.maxBytes || 0);
        const over = document.getElementById(form.dataset.overLimit || "");
        if (max > 0 && file && file.files.length > 0 && file.files[0].size > max) {
          if (over) over.hidden = false;
          return;
        }
        if (over) over.hidden = true;
        const bar = document.getElementById(form.dataset.progress);
        bar.hidden = false;
        const xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        // The CSRF token in a header too, so that a refused upload is
        // refused before its body is read; never in the address.
        const csrf = form.querySelector("input[name=csrf]");
        if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf.value);
        xhr.upload.addEventListener("progress", (e) => {
          if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
        });
        xhr.addEventListener("load", () => {
          if (xhr.responseURL && new URL(xhr.responseURL).pathname !== new URL(form.action).pathname) {
            location.assign(xhr.responseURL);
            return;
          }
          document.open();
          document.write(xhr.responseText);
          document.close();
        });
        xhr.addEventListener("error", () => form.submit());
        xhr.send(new FormData(form));
      });
    }
  });
})();
