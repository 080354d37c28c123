"""Signature rules, as data: one table row per rule, grouped by attack type.

Rules are written from attack-class knowledge (OWASP CRS, libinjection, PayloadsAllTheThings),
never from a test corpus. They match the *normalized* value (lower case, NUL bytes dropped,
runs of blanks made one space, newlines kept) and each carries a stable id and a short reason.
`kinds` limits a rule to some point kinds (None: every kind).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "PatternRule"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PatternRule:
    rule_id: str
    attack_type: str
    pattern: str
    reason: str
    kinds: frozenset[str] | None = None
    skip_kinds: frozenset[str] = frozenset()


# A whole XML document is full of tags, attributes and URLs by design: markup and injection
# rules judge its text and attribute values (their own points), not the document.
_NOT_IN_DOCUMENTS = frozenset({"xml"})
_VALUE_ONLY_TYPES = frozenset({"xss", "sqli", "ssrf", "rfi", "ldapi", "nosqli", "rce"})
# Where a URL is one the server may fetch: parameters and bodies, not Referer/Origin/Host,
# which carry internal addresses in every intranet.
_FETCHED_URL_KINDS = frozenset(
    {"query", "body.form", "json", "jwt", "multipart", "xml_value", "body", "graphql", "path_segment", "cookie"}
)
# Commands whose names are not English words: any argument will do.
_DISTINCT_COMMANDS = (
    r"wget|curl|nc|ncat|netcat|bash|zsh|ksh|python[23]?|perl|ruby|php|ping|nslookup|getent|whoami|uname|"
    r"ifconfig|ipconfig|netstat|powershell|systeminfo|tasklist|certutil|bitsadmin|telnet|chmod|chown|xxd|"
    r"awk|sed|grep|crontab|sudo|hostname|busybox|nohup|rm"
)
# Commands that are also words of prose ("; more than that"): need a shell-like argument.
_WORD_COMMANDS = (
    r"cat|ls|id|echo|sh|sleep|ps|env|printf|dir|type|set|export|kill|touch|mkdir|find|head|tail|more|less|su|"
    r"net|cmd|base64|dig|host"
)
_SHELL_ARGUMENT = r"(?:\s+[-/$'\"`~.\\{]|\s+\w+[/.=]|\s*(?:[;|`)]|&&)|\s*$)"


def _rule(
    rule_id: str, attack_type: str, pattern: str, reason: str, kinds: frozenset[str] | None = None
) -> PatternRule:
    skip = _NOT_IN_DOCUMENTS if attack_type in _VALUE_ONLY_TYPES else frozenset()
    return PatternRule(
        rule_id=rule_id, attack_type=attack_type, pattern=pattern, reason=reason, kinds=kinds, skip_kinds=skip
    )


RULES: tuple[PatternRule, ...] = (
    # --- SQL injection (beyond libinjection's fingerprints) ---
    _rule("sqli-union-select", "sqli", r"\bunion(?:\s+(?:all|distinct))?[\s(]*select\b", "UNION SELECT"),
    _rule("sqli-time-function", "sqli", r"\b(?:sleep|benchmark|pg_sleep|randomblob)\s*\(\s*\d", "timing function"),
    _rule("sqli-waitfor", "sqli", r"\bwaitfor\s+(?:delay|time)\s+'", "WAITFOR DELAY"),
    _rule(
        "sqli-catalog",
        "sqli",
        r"\b(?:information_schema|pg_catalog|sqlite_master|mysql\.user|sysobjects|syscolumns|all_tables|"
        r"xp_cmdshell|sp_executesql|sp_oacreate)\b",
        "database catalog or procedure",
    ),
    _rule(
        "sqli-function",
        "sqli",
        r"\b(?:json_extract|json_depth|extractvalue|updatexml|group_concat|load_file|fn_varbintohexstr|"
        r"utl_inaddr|dbms_pipe|make_set|elt|concat_ws)\s*\(",
        "SQL function used in injections",
    ),
    _rule(
        "sqli-stacked",
        "sqli",
        r"[;'\)]\s*(?:declare\s+@|exec(?:ute)?\s*\(|drop\s+(?:table|database)|insert\s+into|"
        r"update\s+\w+\s+set|delete\s+from|shutdown\b|truncate\s+table)",
        "stacked query",
    ),
    _rule(
        "sqli-quote-logic",
        "sqli",
        r"['\"`)]\s*(?:or|and|\|\||&&|xor|rlike|like|having)\b\s*[\w'\"(@]+\s*(?:=|<|>|\blike\b|\bis\b|\bin\b)",
        "string break followed by a boolean test",
    ),
    _rule("sqli-order-probe", "sqli", r"['\")]\s*(?:order|group)\s+by\s+\d+", "column-count probe"),
    _rule("sqli-comment-version", "sqli", r"/\*!\d*\s*\w", "MySQL versioned comment"),
    # --- cross-site scripting (beyond libinjection's HTML5 tokenizer) ---
    _rule("xss-script-tag", "xss", r"<\s*/?\s*script\b", "script tag"),
    _rule("xss-js-uri", "xss", r"(?:java|vb|live)\s*script\s*:[^\n]{0,80}?[(`=/\\]|data\s*:\s*text/html", "script URI"),
    _rule("xss-event-handler", "xss", r"<[a-z!/][^>]*?[\s\"'/]on[a-z]{3,}\s*=", "HTML event handler"),
    _rule(
        "xss-active-tag",
        "xss",
        r"<\s*(?:iframe|frame|object|embed|svg|img|body|math|details|video|audio|marquee|isindex|form|base|"
        r"link|meta|style|applet|xss|image|input|button|textarea|select|keygen|animate|set|template)\b",
        "active HTML element",
    ),
    _rule(
        "xss-js-sink",
        "xss",
        r"\b(?:alert|prompt|confirm)(?:\(|`|\s*\?\.\s*\(|\s*\.\s*(?:call|apply|bind)\s*\()|"
        r"\(\s*(?:alert|prompt|confirm|eval)\s*\)\s*[(`]|"
        r"\b(?:eval|settimeout|setinterval|fromcharcode|atob)\s*(?:\(|`)|"
        r"\bdocument\s*(?:\?\.|\.|\[\s*['\"])\s*(?:cookie|domain|write|location)|"
        r"\bwindow\s*\.\s*(?:location|name|open)\b|\bsrcdoc\s*=|\bexpression\s*\(",
        "JavaScript sink",
    ),
    _rule(
        "xss-bare-handler",
        "xss",
        r"\bon(?:error|load|focus|focusin|blur|click|dblclick|auxclick|mouse[a-z]+|key[a-z]+|pointer[a-z]+|"
        r"submit|change|input|wheel|toggle|begin|end|animation[a-z]+|transition[a-z]+|drag[a-z]*|scroll|"
        r"hashchange|message|pageshow|popstate|beforeunload|unload|contextmenu|paste|copy|cut|play|start|"
        r"finish|search|show|invalid|readystatechange)\s*=\s*[\w(`'\"]",
        "HTML event handler attribute",
    ),
    _rule("xss-attribute-break", "xss", r"[\"'`][\s/]*on[a-z]{3,}\s*=", "event handler after a quote break"),
    # --- OS command injection ---
    _rule(
        "rce-separator-command",
        "rce",
        rf"(?:[;&|`]|\$\(|\|\||&&)\s*(?:[\w./]*/)?(?:(?:{_DISTINCT_COMMANDS})\b|(?:{_WORD_COMMANDS})\b{_SHELL_ARGUMENT})",
        "shell command after a separator",
    ),
    _rule(
        "rce-newline-command",
        "rce",
        rf"\n\s*(?:[\w./]*/)?(?:{_DISTINCT_COMMANDS}|{_WORD_COMMANDS})\b{_SHELL_ARGUMENT}",
        "shell command on a new line",
    ),
    _rule(
        "rce-brace-expansion",
        "rce",
        rf"\{{(?:{_DISTINCT_COMMANDS}|{_WORD_COMMANDS}),[^}}\s]+\}}",
        "shell brace expansion",
    ),
    _rule(
        "rce-substitution",
        "rce",
        rf"(?:\$\(|`)\s*(?:[\w./]*/)?(?:{_DISTINCT_COMMANDS}|{_WORD_COMMANDS})\b",
        "command substitution",
    ),
    _rule(
        "rce-shell-path",
        "rce",
        r"/bin/(?:ba|z|k|da)?sh\b|\bcmd(?:\.exe)?\s+/c\b|\bpowershell(?:\.exe)?\s+-",
        "shell binary",
    ),
    _rule("rce-shellshock", "rce", r"\(\s*\)\s*\{\s*:?\s*;?\s*\}\s*;", "Shellshock function definition"),
    _rule("rce-ifs", "rce", r"\$\{?ifs\b", "$IFS word splitting"),
    _rule("rce-arithmetic-probe", "rce", r"\$\(\(\s*\d+\s*[*+]\s*\d+\s*\)\)|\bset\s+/a\s+\d", "arithmetic echo probe"),
    _rule("rce-python-yaml", "rce", r"!!python/(?:object|name|module)", "PyYAML object constructor"),
    _rule("rce-argument-injection", "rce", r"--(?:exec|upload-pack|receive-pack)\s*=", "git/ssh argument injection"),
    _rule(
        "rce-vbscript",
        "rce",
        r"\b(?:execute|eval)\s*\(\s*\"|\bcreateobject\s*\(|\bwscript\.shell\b|\bserver\.scripttimeout\b",
        "ASP/VBScript execution",
    ),
    # --- path traversal and local file inclusion ---
    _rule(
        "lfi-dot-dot", "path_traversal", r"(?:^|[\\/=])\.\.+[\\/]|[\\/]\.\.(?:[\\/]|$)", "parent directory traversal"
    ),
    _rule(
        "lfi-sensitive-file",
        "path_traversal",
        r"/etc/(?:passwd|shadow|group|hosts|issue|sudoers)\b|/proc/self/|\bboot\.ini\b|\bwin\.ini\b|"
        r"\\windows\\(?:system32|win\.ini)|\bweb-inf[\\/]web\.xml|\bntuser\.dat\b|\.htpasswd\b",
        "sensitive system file",
    ),
    _rule("lfi-unc-share", "path_traversal", r"\\\\[^\\]+\\[a-z]\$\\", "UNC administrative share"),
    _rule("lfi-file-uri", "path_traversal", r"\bfile:/{1,3}[a-z/\\]", "file: URI"),
    # --- remote file inclusion ---
    _rule("rfi-wrapper", "rfi", r"\b(?:php|zip|phar|expect|input|compress\.zlib)://", "PHP stream wrapper"),
    _rule(
        "rfi-remote-script",
        "rfi",
        r"^(?:https?|ftps?)://[^\s?]+\.(?:txt|php|sh|pl|py|jsp|asp)\?+$",
        "remote script URL",
    ),
    # --- server-side request forgery ---
    _rule(
        "ssrf-internal-address",
        "ssrf",
        r"\b(?:https?|gopher|dict|ftp|ldap|tftp|sftp)://(?:[^/@\s]*@)?(?:localhost\b|127\.\d|0\.0\.0\.0|"
        r"0x7f|2130706433|017700000001|\[::1?\]|\[0:0:0:0:0:ffff:|10\.\d+\.\d+\.\d+|192\.168\.|"
        r"172\.(?:1[6-9]|2\d|3[01])\.|169\.254\.|metadata\.google\.internal|100\.100\.100\.200)",
        "URL to an internal address",
        _FETCHED_URL_KINDS,
    ),
    _rule(
        "ssrf-cloud-metadata",
        "ssrf",
        r"\b(?:169\.254\.169\.254|metadata\.google\.internal|100\.100\.100\.200|fd00:ec2::254)\b",
        "cloud metadata address (never a browser's Referer)",
    ),
    _rule("ssrf-scheme", "ssrf", r"\b(?:gopher|dict|ldap|tftp|jar|netdoc)://", "dangerous URL scheme"),
    # --- XML external entities ---
    _rule("xxe-entity", "xxe", r"<!entity\s+(?:%\s*)?[\w.-]+\s+(?:system|public)\b", "external entity declaration"),
    _rule("xxe-doctype-external", "xxe", r"<!doctype\s+[\w:.-]+\s+(?:system|public)\b", "external DTD"),
    _rule("xxe-doctype-subset", "xxe", r"<!doctype\s+[\w:.-]+\s*\[", "DOCTYPE with an internal subset"),
    _rule(
        "xxe-external-schema",
        "xxe",
        r"\b(?:xsi:schemalocation|xsi:nonamespaceschemalocation)\s*=|<\s*(?:xs|xsd|xi):include\b",
        "external schema or XInclude",
    ),
    _rule("xxe-utf7", "xxe", r"encoding\s*=\s*[\"']utf-7|\+adwaiq-", "UTF-7 encoded markup"),
    # --- server-side template injection ---
    _rule(
        "ssti-arithmetic",
        "ssti",
        r"(?:\{\{|\$\{|#\{|\*\{|<%=?|\{%)\s*[\w.]*\s*\d+\s*[*+/-]\s*\d+",
        "template arithmetic probe",
    ),
    _rule(
        "ssti-object-walk",
        "ssti",
        r"(?:\{\{|\{%|\$\{|#\{)[^}]{0,200}?(?:__class__|__globals__|__builtins__|__subclasses__|__mro__|"
        r"__init__|lipsum|cycler|joiner|constructor|getruntime|\.forname)",
        "template object walk",
    ),
    _rule(
        "ssti-freemarker",
        "ssti",
        r"<#(?:assign|import|include)\b|freemarker\.template\.utility|\?new\s*\(",
        "FreeMarker directive",
    ),
    _rule("ssti-velocity", "ssti", r"#set\s*\(\s*\$\w+|\$class\.inspect|#foreach\s*\(", "Velocity directive"),
    # --- LDAP injection ---
    _rule("ldapi-filter", "ldapi", r"\(\s*[|&!]\s*\(", "LDAP filter operator"),
    _rule(
        "ldapi-wildcard", "ldapi", r"\*\s*\)\s*\(|\(\s*[\w-]+\s*=\s*\*\s*\)|\)\s*\(\s*[|&!]", "LDAP filter break-out"
    ),
    _rule(
        "ldapi-attribute",
        "ldapi",
        r"\b(?:objectclass|userpassword|samaccountname|memberof)\s*[=:~><]",
        "LDAP attribute test",
    ),
    _rule("ldapi-extensible", "ldapi", r"[\w-]+:\d+(?:\.\d+){3,}:=", "LDAP extensible match"),
    # --- NoSQL injection ---
    _rule(
        "nosqli-operator",
        "nosqli",
        r"(?:^|[\[{,\s'\"])\$(?:where|ne|gt|gte|lt|lte|in|nin|regex|exists|or|and|not|nor|expr|elemmatch|"
        r"function|eq|all|size|type|mod|text|jsonschema)\b",
        "MongoDB query operator",
    ),
    _rule(
        "nosqli-shell", "nosqli", r"\bdb\.[\w$]+\.(?:insert|find|update|remove|drop|delete\w*)\s*\(", "Mongo shell call"
    ),
    _rule(
        "nosqli-js",
        "nosqli",
        r";\s*(?:var|let)\s+\w+\s*=|\bwhile\s*\(\s*\w+\s*-\s*\w+|\bthis\.\w+\s*(?:==|!=)|\bnew\s+date\s*\(\s*\)\s*;",
        "server-side JavaScript",
    ),
    # --- CRLF / header injection ---
    _rule(
        "crlf-header",
        "crlf",
        r"(?:[\r\n]|\u560a|\u560d)\s*(?:set-cookie|location|content-type|content-length|refresh|x-xss-protection|"
        r"access-control-[\w-]+|content-security-policy|http/\d)\s*:",
        "header injected after a line break",
    ),
    # --- mail command injection ---
    _rule(
        "mail-imap",
        "mail_injection",
        r"[\r\n]\s*[a-z]\d{1,5}\s+(?:capability|fetch|login|select|examine|append|uid|store|logout|noop|list|lsub|"
        r"status|search|copy|create|delete|rename|subscribe|authenticate)\b",
        "IMAP command after a line break",
    ),
    _rule(
        "mail-smtp",
        "mail_injection",
        r"[\r\n]\s*(?:rcpt\s+to|mail\s+from)\s*:|[\r\n]\s*(?:quit|data|rset|noop|helo|ehlo|starttls)\s*(?:[\r\n]|$)",
        "SMTP command after a line break",
    ),
    _rule(
        "mail-header",
        "mail_injection",
        r"[\r\n]\s*(?:bcc|cc)\s*:\s*[^\s@]+@",
        "mail header after a line break",
    ),
    # --- server-side includes ---
    _rule(
        "ssi-directive",
        "ssi",
        r"<!--\s*#\s*(?:exec|include|echo|config|set|printenv|fsize|flastmod|if)\b",
        "SSI directive",
    ),
    # --- PHP code and object injection ---
    _rule("php-open-tag", "php_injection", r"<\?(?:php\b|=)", "PHP open tag"),
    _rule(
        "php-function",
        "php_injection",
        r"\b(?:system|passthru|shell_exec|popen|proc_open|pcntl_exec|assert|phpinfo|base64_decode|"
        r"file_get_contents|file_put_contents|fopen|readfile|create_function|call_user_func|preg_replace|"
        r"include|require|include_once|require_once|md5|str_rot13|gzinflate)\s*\(.*\)",
        "PHP function call",
    ),
    _rule(
        "php-variable-call",
        "php_injection",
        r"\$\{@?\w+\(|\$_(?:get|post|request|cookie|server)\s*\[",
        "PHP superglobal or dynamic call",
    ),
    _rule("php-object", "php_injection", r"\b[oc]:\d+:\"[\w\\]+\":\d+:\{", "serialized PHP object"),
    # --- Java: deserialization and expression languages ---
    _rule(
        "java-class",
        "java",
        r"\bjava\.lang\.(?:runtime|processbuilder|system|class)\b|\bjavax\.naming\b|\bjavax\.script\b|"
        r"\b(?:getruntime|getclass|forname|getmethod|newinstance)\s*\(|class\.module\.classloader",
        "Java reflection or process API",
    ),
    _rule("java-ognl", "java", r"%\{.*\}|#_memberaccess|@java\.lang|\(#\w+\s*=", "OGNL expression"),
    _rule(
        "java-serialized",
        "java",
        r"\bro0ab|\baced0005|<java\s+version=|<object\s+class=\"java",
        "serialized Java object",
    ),
    _rule("java-spel", "java", r"\$\{\s*t\s*\(\s*java", "Spring expression"),
    # --- scanners and out-of-band callbacks ---
    _rule(
        "scanner-tool",
        "scanner",
        r"\b(?:sqlmap|nikto|nmap|nuclei|openvas|nessus|acunetix|w3af|wpscan|dirbuster|gobuster|feroxbuster|"
        r"masscan|zgrab|wfuzz|arachni|netsparker|appscan|havij|jaeles|skipfish|whatweb|commix|xsstrike|"
        r"fuzz faster u fool|burp\b)|\.nasl\b",
        "security scanner signature",
        frozenset({"header", "path", "path_segment", "query"}),
    ),
    _rule(
        "scanner-oast",
        "scanner",
        r"\b(?:burpcollaborator\.net|oastify\.com|oast\.(?:me|fun|pro|live|site|online)|interact\.sh|"
        r"dnslog\.cn|canarytokens\.com|requestbin\.net|ceye\.io)\b|"
        # A random label of 28+ characters under a domain of its own (label.domain.tld), as
        # interactsh-style callback hosts are; a JWT's base64 segments have one dot fewer.
        r"[@.][a-z0-9]{28,63}\.[a-z0-9-]{1,63}\.[a-z]{2,24}\b",
        "out-of-band callback domain",
    ),
    _rule(
        "scanner-probe-path",
        "scanner",
        r"/\.(?:git|svn|hg|env|ds_store|htaccess|htpasswd|aws|ssh)(?:/|$)|/(?:phpmyadmin|server-status|"
        r"actuator/(?:env|heapdump))\b",
        "scanner probe path",
        frozenset({"path"}),
    ),
    # --- GraphQL ---
    _rule("graphql-introspection", "graphql", r"\b__schema\b\s*\{|\b__type\s*\(", "GraphQL introspection"),
)
