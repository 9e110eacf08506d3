// GTINs checked as the editor types: the length and the check digit (GS1's mod-10), with
// the reason next to the input. The save checks them again (kb.quality) and refuses a
// wrong one; this only says it sooner.
"use strict";
(function () {
  function gtinProblem(text) {
    var digits = text.replace(/[\s-]/g, "");
    if (!digits) return "";
    if (!/^\d+$/.test(digits)) return "A GTIN has digits only.";
    if ([8, 12, 13, 14].indexOf(digits.length) < 0) {
      return "A GTIN has 8, 12, 13 or 14 digits, not " + digits.length + ".";
    }
    var sum = 0;
    for (var i = digits.length - 2, weight = 3; i >= 0; i--, weight = 4 - weight) {
      sum += Number(digits[i]) * weight;
    }
    var check = (10 - (sum % 10)) % 10;
    if (check !== Number(digits[digits.length - 1])) {
      return "The check digit is wrong: it should be " + check + ".";
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
      note.textContent = problem || (input.value.trim() ? "✓ A valid GTIN." : "");
    }
    input.addEventListener("input", check);
    check();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-check='gtin']").forEach(watch);
  });
})();
