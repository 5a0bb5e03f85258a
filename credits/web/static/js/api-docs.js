// Starts Swagger UI on the API document; kept out of the page so the CSP can forbid inline script.
(function () {
  var node = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: node.dataset.specUrl, domNode: node, deepLinking: true });
})();
