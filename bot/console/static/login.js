// The link from the bot is spent by a POST, so that link previews cannot use it up.
document.getElementById("login").submit();
