// The many properties an entity does not use yet sit behind a search box: the editor types
// part of a name ("weight", "colour") and only the matching inputs show. Inputs with an
// error always show.
"use strict";
(function () {
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  };
  function setUp(fieldset) {
    var rows = Array.prototype.slice.call(fieldset.querySelectorAll(".form-row"));
    if (!rows.length) return;
    var box = document.createElement("input");
    box.type = "search";
    box.className = "vTextField property-search-box";
    box.placeholder = interpolate(gettext("Find a property (%(count)s more)…"),
                           {count: rows.length}, true);
    box.setAttribute("aria-label", gettext("Find a property"));
    var heading = fieldset.querySelector("h2");
    (heading || fieldset.firstChild).insertAdjacentElement("afterend", box);
    function words(row) {
      var label = row.querySelector("label");
      return ((label ? label.textContent : "") + " " + row.className).toLowerCase();
    }
    function filter() {
      var query = box.value.trim().toLowerCase();
      rows.forEach(function (row) {
        var shown = row.querySelector(".errorlist") || (query && words(row).indexOf(query) >= 0);
        row.style.display = shown ? "" : "none";
      });
    }
    box.addEventListener("input", filter);
    filter();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("fieldset.property-search").forEach(setUp);
  });
})();
