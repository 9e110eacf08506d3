// GTINs checked as the editor types: the length and the check digit (GS1's mod-10), with
// the reason next to the input. The save checks them again (kb.quality) and refuses a
// wrong one; this only says it sooner.
// Messages in the admin's language: gettext comes from the catalog at /admin/i18n/js/kb/ (Django's
// JavaScriptCatalog), loaded before this file; without it, English.
"use strict";
(function () {
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  };
  function gtinProblem(text) {
    var digits = text.replace(/[\s-]/g, "");
    if (!digits) return "";
    if (!/^\d+$/.test(digits)) return gettext("A GTIN has digits only.");
    if ([8, 12, 13, 14].indexOf(digits.length) < 0) {
      return interpolate(gettext("A GTIN has 8, 12, 13 or 14 digits, not %(count)s."),
                  {count: digits.length}, true);
    }
    var sum = 0;
    for (var i = digits.length - 2, weight = 3; i >= 0; i--, weight = 4 - weight) {
      sum += Number(digits[i]) * weight;
    }
    var check = (10 - (sum % 10)) % 10;
    if (check !== Number(digits[digits.length - 1])) {
      return interpolate(gettext("The check digit is wrong: it should be %(digit)s."),
                  {digit: check}, true);
    }
    return "";
  }

  function watch(input) {
    var note = document.createElement("div");
    note.className = "help identifier-check";
    note.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", note);
    function check() {
      var problem = gtinProblem(input.value);
      input.setCustomValidity(problem);
      note.textContent = problem || (input.value.trim() ? gettext("✓ A valid GTIN.") : "");
    }
    input.addEventListener("input", check);
    check();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-check='gtin']").forEach(watch);
  });
})();
