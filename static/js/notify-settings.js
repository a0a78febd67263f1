// The account page's notification settings, kept in localStorage; permission is asked only when "notify" is ticked.
(function () {
  "use strict";
  var KEY = "imagegen:notifications";
  var section = document.getElementById("browser-notifications");
  if (!section) return;

  function load() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  function save(settings) {
    try { window.localStorage.setItem(KEY, JSON.stringify(settings)); } catch (e) { /* private mode: not kept */ }
  }

  var state = document.getElementById("notify-permission");
  function say(text) { if (state) state.textContent = text; }

  var settings = load();
  section.hidden = false;
  section.querySelectorAll("[data-notify-setting]").forEach(function (box) {
    var name = box.getAttribute("data-notify-setting");
    box.checked = Boolean(settings[name]);
    if (name === "notify" && !("Notification" in window)) {
      box.disabled = true;
      say("This browser cannot show notifications.");
    }
    box.addEventListener("change", function () {
      settings = load();
      settings[name] = box.checked;
      save(settings);
      if (name !== "notify" || !box.checked) return;
      if (Notification.permission === "granted") { say("Notifications are on for this browser."); return; }
      Notification.requestPermission().then(function (answer) {
        if (answer === "granted") { say("Notifications are on for this browser."); return; }
        box.checked = false;
        settings = load();
        settings.notify = false;
        save(settings);
        say("The browser refused notifications for this site; allow them in its site settings, then tick this again.");
      });
    });
  });
})();
