/* widget-server loader (placeholder until the widget issue lands): keeps the HelpWidget
   queue working so host pages can embed the snippet today. */
(function () {
  "use strict";
  var script = document.currentScript;
  var api = window.HelpWidget || function () { (api.q = api.q || []).push(arguments); };
  window.HelpWidget = api;
  api.site = script && script.getAttribute("data-site");
  api.server = script && new URL(script.src).origin;
})();
