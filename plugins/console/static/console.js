// swain console: small enhancements only; every page works without this file.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function copyText(text, button) {
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else { fallback(text); done(); }
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text; area.setAttribute("readonly", ""); area.className = "offscreen";
    document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var from = button.getAttribute("data-copy-from");
    var text = from ? document.getElementById(from).textContent : button.getAttribute("data-copy");
    copyText(text, button);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.classList.contains("confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  document.querySelectorAll("select.auto-submit").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // The mapping cards: columns follow the chosen table; every change is checked.
  var mapping = document.getElementById("mapping-form");
  if (!mapping) return;
  var tables = JSON.parse(mapping.getAttribute("data-tables") || "{}");
  var norm = function (s) { return s.toLowerCase().replace(/[^a-z0-9]/g, ""); };
  var timer = null;

  function fill(card) {
    var table = card.querySelector("select.map-table").value;
    var columns = tables[table] || [];
    card.classList.toggle("mapped", !!table);
    card.querySelectorAll("select.map-column").forEach(function (select) {
      var keep = select.value;
      var role = select.getAttribute("data-role");
      select.innerHTML = "";
      var blank = document.createElement("option"); blank.value = ""; blank.textContent = "—";
      select.appendChild(blank);
      var chosen = "";
      columns.forEach(function (name) {
        var option = document.createElement("option");
        option.value = name; option.textContent = name;
        select.appendChild(option);
        if (name === keep) chosen = name;
        if (!chosen && norm(name) === norm(role)) chosen = name;
      });
      select.value = chosen;
    });
  }

  function check() {
    var body = {};
    new FormData(mapping).forEach(function (value, key) {
      if (key.indexOf("mapping.") === 0) body[key] = value;
    });
    var status = document.getElementById("check-status");
    status.textContent = "checking…";
    fetch(mapping.getAttribute("data-check"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body)
    }).then(function (r) { return r.json().then(function (data) { return [r.status, data]; }); })
      .then(function (result) {
        var data = result[1];
        if (result[0] !== 200) { status.textContent = (data.error && data.error.message) || "check failed"; return; }
        mapping.querySelectorAll("[data-field].live").forEach(function (p) {
          var message = data.problems[p.getAttribute("data-field")];
          p.textContent = message || ""; p.hidden = !message;
          p.closest(".field").classList.toggle("invalid", !!message);
        });
        mapping.querySelectorAll("[data-warning]").forEach(function (p) {
          var message = data.warnings[p.getAttribute("data-warning")];
          p.textContent = message || ""; p.hidden = !message;
          p.closest(".field").classList.toggle("warned", !!message);
        });
        var problems = Object.keys(data.problems).length, warnings = Object.keys(data.warnings).length;
        status.textContent = problems ? problems + " problem(s) to fix" :
          (warnings ? "no problem; " + warnings + " warning(s)" : "all mapped cards check out");
      }, function () { status.textContent = "could not check (offline?)"; });
  }

  mapping.addEventListener("change", function (event) {
    if (event.target.classList.contains("map-table")) fill(event.target.closest(".map-card"));
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
})();
