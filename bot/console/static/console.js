// Live panels: the server pushes the panels' HTML whenever the data changed.
(function () {
  var panels = document.getElementById("panels");
  if (!panels || !window.EventSource) return;
  var live = document.getElementById("live");
  var offline = document.getElementById("offline");
  var source = new EventSource(panels.dataset.stream);
  source.addEventListener("panels", function (event) {
    panels.innerHTML = event.data;
    panels.dataset.updated = String(Date.now());
  });
  source.addEventListener("ended", function () {
    source.close();
    window.location.reload();
  });
  source.onopen = function () { live.hidden = false; offline.hidden = true; };
  source.onerror = function () { live.hidden = true; offline.hidden = false; };
})();
