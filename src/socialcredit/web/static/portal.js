// Progressive enhancement only: every page works without this script.
// The search box shows results as you type (the same server-rendered HTML, fetched and swapped in).
(function () {
  "use strict";
  var box = document.getElementById("q");
  var results = document.getElementById("results");
  if (!box || !results || !window.fetch || !window.DOMParser) return;
  var timer = null;
  var last = box.value;
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = box.value.trim();
      if (q === last || (q.length > 0 && q.length < 2)) return;
      last = q;
      var url = "/search?q=" + encodeURIComponent(q);
      fetch(url, { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null || box.value.trim() !== q) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("results");
          if (fresh) {
            results.innerHTML = fresh.innerHTML;
            if (window.history && history.replaceState) history.replaceState(null, "", url);
          }
        })
        .catch(function () { /* the form still works */ });
    }, 250);
  });
})();
