/* Live updates: show new orders as they arrive, follow job progress, reconnect. */
(function () {
  "use strict";
  if (!window.WebSocket || window.crmLive) return;

  var box = null;

  function notices() {
    if (!box) {
      box = document.createElement("div");
      box.className = "crm-live-notices";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    return box;
  }

  function notice(text) {
    var item = document.createElement("div");
    item.className = "crm-live-notice";
    var words = document.createElement("span");
    words.textContent = text;  // never HTML: names come from users
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.onclick = function () { item.remove(); };
    item.appendChild(words);
    item.appendChild(close);
    notices().appendChild(item);
    setTimeout(function () { item.remove(); }, 15000);
  }

  var handlers = {
    "order.created": function (m) {
      notice("New order: " + m.client.name + " — " + m.order.title + " — " + m.order.amount);
    },
    "orders.imported": function (m) {
      notice(m.count + (m.count === 1 ? " new order" : " new orders") + " imported");
    }
  };

  function connect(delay) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/updates/");
    socket.onopen = function () { delay = 500; document.documentElement.dataset.crmLive = "open"; };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (handlers[message.type]) handlers[message.type](message);
      document.dispatchEvent(new CustomEvent("crm:live", {detail: message}));
    };
    socket.onclose = function (event) {
      document.documentElement.dataset.crmLive = "closed";
      if (event.code === 4401 || event.code === 4403) return;  // not for this user
      // The server restarted or the network blinked: try again, less and less often.
      setTimeout(function () { connect(Math.min(delay * 2, 10000)); }, delay);
    };
  }

  window.crmLive = {notice: notice};
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { connect(500); });
  } else {
    connect(500);
  }
})();
