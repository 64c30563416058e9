// Progressive: the change page reads without this; with it, the steps
// follow the change over server-sent events. The server sends HTML it
// rendered and escaped itself, as a JSON string.
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var src = new EventSource(live.getAttribute("data-events"));
  src.addEventListener("view", function (e) {
    live.innerHTML = JSON.parse(e.data);
  });
  src.addEventListener("end", function () { src.close(); });
  src.onerror = function () { src.close(); };
})();
