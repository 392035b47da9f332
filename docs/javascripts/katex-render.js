// Typesets the formulas that pymdownx.arithmatex (generic mode) leaves as \( ... \) spans and \[ ... \] blocks
// of class "arithmatex", with the KaTeX copy shipped in docs/vendor/katex (no network: the site renders offline).
// A formula KaTeX cannot parse is shown in red with its TeX source (throwOnError: false), never dropped.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    var tex = el.textContent.trim();
    var display = tex.startsWith("\\[");
    if (display || tex.startsWith("\\(")) {
      tex = tex.slice(2, -2);
    }
    katex.render(tex, el, { displayMode: display, throwOnError: false });
  });
});
