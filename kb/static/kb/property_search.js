// The many properties an entity does not use yet sit behind a search box: the editor types
// part of a name ("weight", "colour") and only the matching inputs show. Inputs with an
// error always show.
"use strict";
(function () {
  function setUp(fieldset) {
    var rows = Array.prototype.slice.call(fieldset.querySelectorAll(".form-row"));
    if (!rows.length) return;
    var box = document.createElement("input");
    box.type = "search";
    box.className = "vTextField property-search-box";
    box.placeholder = "Find a property (" + rows.length + " more)…";
    box.setAttribute("aria-label", "Find a property");
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
