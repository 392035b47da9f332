// MathJax 3 settings for pymdownx.arithmatex (generic mode). Load MathJax itself from your own copy or a
// CDN in a theme override; without it the formulas show as their TeX source.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" }
};
