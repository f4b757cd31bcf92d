// The console's own few lines of script; every page works without them.
// A form marked data-progress (a file upload that takes a while) shows that it is working and is not
// sent twice.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.hasAttribute("data-progress")) return;
  const shown = form.querySelector(".progress");
  if (shown) shown.hidden = false;
  for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
});
