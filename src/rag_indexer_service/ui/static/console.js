// Refreshes the parts of a page marked data-refresh="/ui/live/..." every data-every-ms
// milliseconds by replacing them with the server's fresh rendering; stops once the fresh
// part carries no data-refresh (a finished run). Same origin only; no other behaviour.
(function () {
  "use strict";

  function schedule(element) {
    var url = element.getAttribute("data-refresh");
    var every = parseInt(element.getAttribute("data-every-ms") || "2000", 10);
    if (!url || url.charAt(0) !== "/") return;
    window.setTimeout(function () { refresh(element, url); }, every);
  }

  function refresh(element, url) {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/ui/login?next=" + encodeURIComponent(window.location.pathname));
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#" + element.id);
        if (!fresh) return;
        element.replaceWith(fresh);
        if (fresh.hasAttribute("data-refresh")) schedule(fresh);
      })
      .catch(function () { window.setTimeout(function () { refresh(element, url); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh][id]").forEach(schedule);
  });
})();
