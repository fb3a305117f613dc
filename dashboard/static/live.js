// Live updates: the server says "changed" over Server-Sent Events and the page fetches its own
// content again (same URL, same filters) and swaps it in. Without JavaScript the page still works;
// it is only not live.
(function () {
  "use strict";
  var region = document.getElementById("indhold");
  var status = document.getElementById("live-status");
  if (!region || !window.EventSource) { return; }
  var loading = false, again = false;

  function editing() {
    var el = document.activeElement;
    return el && region.contains(el) && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName);
  }

  // Someone typing in a filter keeps what they typed: the refresh waits until they leave the field.
  region.addEventListener("focusout", function () { if (again && !loading) { again = false; refresh(); } });

  function refresh() {
    if (loading || editing()) { again = true; return; }
    loading = true;
    fetch(window.location.href, { headers: { "X-Partial": "1" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var focused = document.activeElement && document.activeElement.id;
        region.innerHTML = html;
        var same = focused && document.getElementById(focused);
        if (same && same !== document.activeElement) { same.focus(); }
        if (status) { status.textContent = "Opdateret " + new Date().toLocaleTimeString("da-DK"); }
        document.body.setAttribute("data-version", String(Date.now()));
      })
      .finally(function () {
        loading = false;
        if (again) { again = false; refresh(); }
      });
  }

  var source = new EventSource("/live");
  source.addEventListener("ready", function () { document.body.setAttribute("data-live", "on"); });
  source.addEventListener("changed", refresh);
  source.onerror = function () { if (status) { status.textContent = "Forbindelsen afbrudt — prøver igen"; } };
})();
