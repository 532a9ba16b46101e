// The login page: the form posts as a plain HTML form (it works without this script). Checking
// the password takes the server a moment (argon2), so the button says so and a second click
// does not send the form again.

import { $, startPage } from './common.js';

function loginPage() {
  const form = $('#login-form');
  const submit = $('button[type=submit]', form);
  form.addEventListener('submit', (e) => {
    if (form.dataset.sent) { e.preventDefault(); return; }
    form.dataset.sent = 'true';
    submit.setAttribute('aria-disabled', 'true');
    submit.textContent = 'Logging in…';
  });
  // Coming back from the browser's history shows the page as it was left: ready again.
  window.addEventListener('pageshow', () => {
    delete form.dataset.sent;
    submit.removeAttribute('aria-disabled');
    submit.textContent = 'Log in';
  });
}

startPage(loginPage);
