// The dashboard: one WebSocket to DashboardConsumer, reconnecting with backoff.
(function () {
  "use strict";
  const feed = document.getElementById("feed");
  const status = document.getElementById("status");
  let socket = null;
  let delay = 500;

  function describe(kind, data) {
    switch (kind) {
      case "message": return data.author + ": " + data.text;
      case "reading": return data.device + " " + data.metric + " = " + data.value;
      case "email": return "mail from " + data.from + ": " + data.subject +
        (data.attachments && data.attachments.length ? " (" + data.attachments.join(", ") + ")" : "");
      case "device": return data.device + " says: " + data.text;
      case "command": return "command '" + data.command + "' sent to " + data.device;
      case "ack": return data.device + " acknowledged: " + data.text;
      case "hello": return "connected";
      default: return JSON.stringify(data);
    }
  }

  function show(kind, data) {
    const item = document.createElement("li");
    item.className = "event event-" + kind;
    const label = document.createElement("span");
    label.className = "kind";
    label.textContent = kind;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = describe(kind, data);
    item.append(label, text);
    feed.prepend(item);
    while (feed.children.length > 200) feed.lastChild.remove();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/dashboard/");
    socket.onopen = function () {
      delay = 500;
      status.textContent = "live";
      status.className = "status online";
    };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      show(message.kind, message.data);
    };
    socket.onclose = function () {
      status.textContent = "reconnecting…";
      status.className = "status offline";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  function send(payload) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
  }

  document.getElementById("say").addEventListener("submit", function (event) {
    event.preventDefault();
    const input = document.getElementById("say-text");
    send({ action: "say", text: input.value });
    input.value = "";
  });
  document.getElementById("command").addEventListener("submit", function (event) {
    event.preventDefault();
    send({
      action: "command",
      device: document.getElementById("command-device").value,
      command: document.getElementById("command-text").value,
    });
  });
  connect();
})();
