// Run before each page's own scripts (tests/e2e/test_wechat.py): what WeChat's in-app browser (XWeb on Android,
// WKWebView on iOS) does not give a page served over plain http, or refuses — found in WeChat's JS-SDK notes and
// the browsers' secure-context rules: no camera (getUserMedia needs https and WeChat's permission), no clipboard
// API, no service worker, no notifications or Web Share, no BarcodeDetector, and window.open opens nothing.
(() => {
  const gone = [
    [Navigator.prototype, "mediaDevices"], [Navigator.prototype, "clipboard"], [Navigator.prototype, "serviceWorker"],
    [Navigator.prototype, "share"], [Navigator.prototype, "canShare"],
    [window, "Notification"], [window, "PushManager"], [window, "BarcodeDetector"], [window, "PaymentRequest"],
  ];
  for (const [owner, name] of gone) {
    delete owner[name];
  }
  window.open = () => null;
})();
