// kurashi staff console: small progressive enhancements (every form works without this file).
document.addEventListener("click", (event) => {
  // A canned reply button puts its text into the reply box (the staff member can still edit it).
  const button = event.target.closest("button[data-canned]");
  if (!button) return;
  event.preventDefault();
  const box = document.getElementById("reply-text");
  if (!box) return;
  box.value = box.value ? box.value.replace(/\s*$/, "\n\n") + button.dataset.canned : button.dataset.canned;
  box.focus();
});
document.addEventListener("submit", (event) => {
  // Ask before an action the resident will see and that cannot be undone.
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
