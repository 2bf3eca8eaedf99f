"""The texts of the demo's survey comments: sentence templates per (theme, language,
sentiment) with [a|b] alternatives, openers and closers, the themes and their weights by NPS
group, and the signatures of comments with personal data.

    sentence_variants()[("invoice", "en", "positive")] -> ["The invoice is clear.", "The invoice is easy to understand."]
"""

from __future__ import annotations

import itertools
import re

# --- verbatim templates: [a|b] marks alternatives; every variant contains a keyword of its
# theme (config/taxonomy.yml) and none of another theme (tests/test_demo.py checks this). ---
SENTENCES: dict[tuple[str, str, str], list[str]] = {
    # sales staff
    ("sales_competence", "de", "positive"): ["[Im Shop|Am Telefon|Im Beratungsgespräch] wurde ich [sehr gut|wirklich gut|richtig gut] beraten.",
                                              "Die Beratung war [fachkundig|ausgezeichnet|top] und hat mir bei der Tarifwahl geholfen."],
    ("sales_competence", "de", "negative"): ["Ich wurde [im Shop|am Telefon] schlecht beraten[ und habe jetzt den falschen Tarif| und bereue den Vertrag|].",
                                              "Die Beratung war [oberflächlich|mangelhaft|dürftig]."],
    ("sales_competence", "de", "neutral"): ["Die Beratung war in Ordnung, [mehr nicht|nichts Besonderes]."],
    ("sales_competence", "en", "positive"): ["The [sales rep|salesperson] was very knowledgeable[ and explained everything| and helped me choose|].",
                                              "Great advice [in the store|on the phone] when choosing my plan."],
    ("sales_competence", "en", "negative"): ["The [sales rep|salesperson] gave me [wrong|misleading] advice about my plan.",
                                              "Poor advice [in the store|on the phone], I ended up with the wrong plan."],
    ("sales_competence", "en", "neutral"): ["The advice [in the store|on the phone] was okay."],
    ("sales_individuality", "de", "positive"): ["Man ist [wirklich|sehr] auf mich eingegangen[ und hat meine Wünsche ernst genommen|].",
                                                 "Sehr persönliche Betreuung beim Vertragsabschluss."],
    ("sales_individuality", "de", "negative"): ["Niemand ist auf mich eingegangen, alles nach Schema F.",
                                                 "Keine individuelle Lösung, nur [Schema F|Standard von der Stange]."],
    ("sales_individuality", "de", "neutral"): ["Die Betreuung war wenig individuell, aber okay."],
    ("sales_individuality", "en", "positive"): ["They took time for a [personal|tailored] solution that fits my needs.",
                                                 "The plan was tailored to what I need."],
    ("sales_individuality", "en", "negative"): ["Nothing individual about it, just a one-size-fits-all script.",
                                                 "No personal touch at all."],
    ("sales_individuality", "en", "neutral"): ["Not very personal, but fine."],
    ("sales_friendliness", "de", "positive"): ["[Die Mitarbeiterin|Der Mitarbeiter] im Shop war [super freundlich|sehr nett|ausgesprochen höflich].",
                                                "Alle waren [sehr freundlich|total nett]."],
    ("sales_friendliness", "de", "negative"): ["[Die Mitarbeiterin|Der Mitarbeiter] war [unfreundlich|patzig und unfreundlich|ausgesprochen unfreundlich]."],
    ("sales_friendliness", "de", "neutral"): ["Die Leute waren freundlich, sonst nichts Besonderes."],
    ("sales_friendliness", "en", "positive"): ["The staff were [very friendly|really kind|so polite]."],
    ("sales_friendliness", "en", "negative"): ["The [agent|staff member|person in the store] was [rude|unfriendly] to me."],
    ("sales_friendliness", "en", "neutral"): ["Staff were polite enough."],
    ("quote_speed", "de", "positive"): ["Das Angebot kam [noch am selben Tag|innerhalb einer Stunde|sofort per Mail]."],
    ("quote_speed", "de", "negative"): ["Auf das Angebot musste ich [zwei Wochen|ewig|über eine Woche] warten.",
                                        "Ein Angebot habe ich bis heute nicht bekommen."],
    ("quote_speed", "de", "neutral"): ["Das Angebot kam nach ein paar Tagen."],
    ("quote_speed", "en", "positive"): ["I got the quote [the same day|within an hour|right away]."],
    ("quote_speed", "en", "negative"): ["It took [forever|ages] to get a quote.", "Still no quote after my request."],
    ("quote_speed", "en", "neutral"): ["The quote arrived as expected."],
    # product
    ("product_function", "de", "positive"): ["Das Internet ist [super schnell|richtig schnell|immer schnell].",
                                              "Der Empfang ist [überall gut|auch auf dem Land top]."],
    ("product_function", "de", "negative"): ["Das Internet ist [abends|ständig|oft] [extrem langsam|viel zu langsam].",
                                              "Der Empfang [in meiner Wohnung|im Büro|im Keller] ist miserabel."],
    ("product_function", "de", "neutral"): ["Das Netz funktioniert meistens."],
    ("product_function", "en", "positive"): ["The speed is [great|excellent] and the signal is strong.",
                                              "Coverage is good everywhere I go."],
    ("product_function", "en", "negative"): ["The [connection|internet] is [really slow|painfully slow] in the evenings.",
                                              "Signal is [terrible|weak] at home."],
    ("product_function", "en", "neutral"): ["The network works most of the time."],
    ("product_lifetime", "de", "positive"): ["Das Handy aus dem Vertrag ist [robust und haltbar|sehr haltbar]."],
    ("product_lifetime", "de", "negative"): ["Das Gerät war nach [drei Monaten|kurzer Zeit|einem halben Jahr] kaputt.",
                                              "Das Handy ist schon wieder defekt."],
    ("product_lifetime", "de", "neutral"): ["Mal sehen, wie haltbar das Gerät ist."],
    ("product_lifetime", "en", "positive"): ["The phone from the contract is [durable|long-lasting]."],
    ("product_lifetime", "en", "negative"): ["The device broke after [three months|a few months].", "My handset is broken again."],
    ("product_lifetime", "en", "neutral"): ["We'll see how durable the device is."],
    ("product_quality", "de", "positive"): ["Die Verbindung ist [absolut zuverlässig|sehr stabil|stabil und zuverlässig].",
                                             "Tolle Qualität der Gespräche."],
    ("product_quality", "de", "negative"): ["Die Verbindung ist [alles andere als stabil|nicht zuverlässig].",
                                             "Die Qualität der Gespräche ist [schlecht|mies]."],
    ("product_quality", "de", "neutral"): ["Die Qualität ist okay."],
    ("product_quality", "en", "positive"): ["The connection is [very reliable|rock stable].", "Call quality is excellent."],
    ("product_quality", "en", "negative"): ["The connection is not [reliable|stable] at all.", "Call quality is poor."],
    ("product_quality", "en", "neutral"): ["Quality is acceptable."],
    # service staff
    ("service_reachability", "de", "positive"): ["Der Kundenservice war [jederzeit|gut|sofort] erreichbar."],
    ("service_reachability", "de", "negative"): ["Ich habe [tagsüber|drei Tage lang|mehrfach] niemanden erreicht.",
                                                  "Der Kundenservice ist [kaum|praktisch nie] erreichbar."],
    ("service_reachability", "de", "neutral"): ["Erreichbar war der Kundenservice, wenn auch nicht sofort."],
    ("service_reachability", "en", "positive"): ["Customer service was easy to reach."],
    ("service_reachability", "en", "negative"): ["I could not get through to anyone.", "Impossible to reach customer service."],
    ("service_reachability", "en", "neutral"): ["Customer service was reachable eventually."],
    ("service_competence", "de", "positive"): ["[Die Mitarbeiterin|Der Mitarbeiter] [am Telefon|im Chat] war sehr kompetent."],
    ("service_competence", "de", "negative"): ["[Dreimal|Mehrmals] weiterverbunden und am Ende war keiner zuständig.",
                                               "Die Leute im Kundenservice [wirkten|waren] völlig ahnungslos."],
    ("service_competence", "de", "neutral"): ["Der Mitarbeiter war kompetent, konnte aber nicht alles klären."],
    ("service_competence", "en", "positive"): ["The agent [in the chat|on the phone] was very competent."],
    ("service_competence", "en", "negative"): ["I was transferred [three times|again and again] and nobody could help.",
                                               "The staff seemed clueless."],
    ("service_competence", "en", "neutral"): ["The agent was competent but could not solve everything."],
    ("service_individuality", "de", "positive"): ["Man hat sich kulant gezeigt[ und mir eine Gutschrift gegeben|].", "Sehr kulante Lösung."],
    ("service_individuality", "de", "negative"): ["Auf meine Beschwerde kam nur eine Standardantwort.",
                                                  "Nur Textbausteine, keine echte Hilfe."],
    ("service_individuality", "de", "neutral"): ["Die Kulanz war okay."],
    ("service_individuality", "en", "positive"): ["They showed goodwill and gave me a credit."],
    ("service_individuality", "en", "negative"): ["I only got a canned [message|text].", "Just a template answer, no real help."],
    ("service_individuality", "en", "neutral"): ["A goodwill gesture would have been nice."],
    ("response_time", "de", "positive"): ["Die Antwort kam [zügig|am nächsten Tag|innerhalb weniger Stunden].",
                                          "Der Rückruf kam wie versprochen."],
    ("response_time", "de", "negative"): ["Auf eine Rückmeldung warte ich seit [Wochen|zehn Tagen|einem Monat].",
                                          "Der versprochene Rückruf kam nie."],
    ("response_time", "de", "neutral"): ["Die Antwort kam nach ein paar Tagen."],
    ("response_time", "en", "positive"): ["I got a reply [the next morning|within hours|very soon].", "The callback came as promised."],
    ("response_time", "en", "negative"): ["Still no response after [two weeks|ten days|a month].", "The promised callback never happened."],
    ("response_time", "en", "neutral"): ["The reply came after a few days."],
    # process
    ("invoice", "de", "positive"): ["Die Rechnung ist [übersichtlich|klar und verständlich|endlich verständlich]."],
    ("invoice", "de", "negative"): ["Auf meiner Rechnung stehen [Positionen, die ich nicht kenne|falsche Beträge|Posten, die ich nie bestellt habe].",
                                    "Es wurde [zu viel|doppelt|ohne Ankündigung] abgebucht.",
                                    "[Eine unerklärliche|Schon wieder eine] Gebühr auf der Abrechnung.",
                                    "Die Rechnung ist [nicht nachvollziehbar|schon wieder falsch|ein einziges Rätsel]."],
    ("invoice", "de", "neutral"): ["Die Rechnung kam pünktlich."],
    ("invoice", "en", "positive"): ["The invoice is [clear|easy to understand]."],
    ("invoice", "en", "negative"): ["I was charged [twice|for things I never ordered|an extra fee].",
                                    "My bill is [wrong again|full of items I don't understand]."],
    ("invoice", "en", "neutral"): ["The invoice arrived on time."],
    ("provisioning", "de", "positive"): ["Die Freischaltung lief [reibungslos|problemlos|ohne Probleme].",
                                         "Der Techniker war pünktlich und alles lief sofort."],
    ("provisioning", "de", "negative"): ["Die Bereitstellung hat [über einen Monat|fünf Wochen|ewig] gedauert.",
                                         "Der Techniker ist [zweimal|dreimal] nicht erschienen.",
                                         "Der Router kam [viel zu spät|nie an]."],
    ("provisioning", "de", "neutral"): ["Die Freischaltung hat etwas gedauert, lief dann aber."],
    ("provisioning", "en", "positive"): ["Activation was [smooth|quick and easy].", "The technician was on time and the setup was easy."],
    ("provisioning", "en", "negative"): ["Activation took [more than a month|far too long].",
                                         "The technician did not show up [twice|three times].", "The router arrived late."],
    ("provisioning", "en", "neutral"): ["Installation took a while but then it was fine."],
    ("hotline_waiting", "de", "positive"): ["Kaum Wartezeit an der Hotline.", "Diesmal war die Warteschleife kurz."],
    ("hotline_waiting", "de", "negative"): ["[Eine Stunde|45 Minuten|Ewig] in der Warteschleife.",
                                            "Die Wartezeit an der Hotline ist eine Zumutung."],
    ("hotline_waiting", "de", "neutral"): ["Die Wartezeit war normal."],
    ("hotline_waiting", "en", "positive"): ["Hardly any waiting on the hotline."],
    ("hotline_waiting", "en", "negative"): ["[An hour|45 minutes|Forever] on hold.", "The hotline queue is ridiculous."],
    ("hotline_waiting", "en", "neutral"): ["Wait times were average."],
    ("outage", "de", "positive"): ["Die Störung war [zügig|innerhalb von Stunden] behoben.",
                                   "Gut, dass ich über den Ausfall vorab informiert wurde."],
    ("outage", "de", "negative"): ["[Zwei Tage|Ein ganzes Wochenende|Drei Tage] kein Internet!",
                                   "Schon wieder eine Störung in unserer Gegend.",
                                   "Der Ausfall hat mich [einen Arbeitstag|viel Geld] gekostet."],
    ("outage", "de", "neutral"): ["Es gab eine Störung, die inzwischen behoben ist."],
    ("outage", "en", "positive"): ["The outage was fixed [promptly|within hours].", "Thanks for the heads-up about the outage."],
    ("outage", "en", "negative"): ["No internet for [a whole weekend|half a week]!", "Another outage in our area.",
                                   "The service was down again."],
    ("outage", "en", "neutral"): ["There was an outage, it is fixed now."],
    ("price", "de", "positive"): ["Der Preis ist [fair|völlig in Ordnung|unschlagbar].", "Im Vergleich [richtig|sehr] günstig."],
    ("price", "de", "negative"): ["Viel zu teuer für das, was man bekommt.", "Der Preis wurde [schon wieder|ohne Grund] erhöht."],
    ("price", "de", "neutral"): ["Der Preis ist okay."],
    ("price", "en", "positive"): ["The price is [fair|very reasonable].", "Cheap compared to others."],
    ("price", "en", "negative"): ["Far too expensive for what you get.", "They raised the price again."],
    ("price", "en", "neutral"): ["Price is okay."],
    # a few themes in other languages (French, Turkish, Spanish)
    ("invoice", "fr", "negative"): ["La facture est fausse, on m'a prélevé deux fois."],
    ("invoice", "fr", "positive"): ["Facture claire et simple."],
    ("invoice", "tr", "negative"): ["Fatura yanlış, iki kez ödeme alındı."],
    ("invoice", "tr", "positive"): ["Fatura çok açık ve anlaşılır."],
    ("invoice", "es", "negative"): ["La factura está mal, me cobraron dos veces."],
    ("invoice", "es", "positive"): ["La factura es clara."],
    ("outage", "fr", "negative"): ["Pas d'internet pendant deux jours."],
    ("outage", "fr", "positive"): ["Panne réparée rapidement, merci de l'information."],
    ("outage", "tr", "negative"): ["İki gündür internet yok."],
    ("outage", "tr", "positive"): ["Arıza hızlıca giderildi."],
    ("outage", "es", "negative"): ["Dos días sin internet."],
    ("outage", "es", "positive"): ["La avería se arregló rápido."],
    ("hotline_waiting", "fr", "negative"): ["Une heure d'attente au téléphone."],
    ("hotline_waiting", "tr", "negative"): ["Telefonda bir saat bekledim."],
    ("hotline_waiting", "es", "negative"): ["Una hora esperando al teléfono."],
    ("price", "fr", "negative"): ["Beaucoup trop cher."], ("price", "fr", "positive"): ["Bon rapport qualité-prix."],
    ("price", "tr", "negative"): ["Çok pahalı."], ("price", "tr", "positive"): ["Fiyatı uygun."],
    ("price", "es", "negative"): ["Demasiado caro."], ("price", "es", "positive"): ["Buen precio."],
    ("product_function", "fr", "negative"): ["Internet très lent le soir."], ("product_function", "fr", "positive"): ["Connexion très rapide."],
    ("product_function", "tr", "negative"): ["İnternet çok yavaş."], ("product_function", "tr", "positive"): ["İnternet çok hızlı."],
    ("product_function", "es", "negative"): ["Internet muy lento."], ("product_function", "es", "positive"): ["Internet muy rápido."],
    ("sales_friendliness", "fr", "positive"): ["Le vendeur était très aimable."], ("sales_friendliness", "fr", "negative"): ["Vendeur désagréable."],
    ("sales_friendliness", "tr", "positive"): ["Çalışanlar çok kibar."], ("sales_friendliness", "tr", "negative"): ["Çalışanlar kaba davrandı."],
    ("sales_friendliness", "es", "positive"): ["Los empleados fueron muy amables."], ("sales_friendliness", "es", "negative"): ["Los empleados fueron maleducados."],
}
OPENERS = {
    ("de", "negative"): ["Sehr enttäuschend.", "Ich bin unzufrieden.", "Ärgerlich!", "So geht das nicht.", "Leider keine gute Erfahrung."],
    ("de", "positive"): ["Alles super!", "Sehr zufrieden.", "Danke!", "Top!", "Rundum gelungen."],
    ("de", "neutral"): ["Na ja.", "Geht so.", "Insgesamt in Ordnung."],
    ("en", "negative"): ["Very disappointing.", "Not happy.", "Terrible experience.", "Frustrating."],
    ("en", "positive"): ["Great!", "Very happy.", "Thanks!", "Excellent experience."],
    ("en", "neutral"): ["It's okay.", "Mixed experience.", "Average."],
}
CLOSERS = {
    ("de", "negative"): ["Ich überlege zu kündigen.", "So nicht!", "Bitte ändern Sie das.", "Nie wieder."],
    ("de", "positive"): ["Weiter so!", "Gerne wieder.", "Ich empfehle Telko Nord gern weiter."],
    ("de", "neutral"): ["Mal sehen.", "Passt schon."],
    ("en", "negative"): ["Thinking about switching provider.", "Please fix this.", "Never again."],
    ("en", "positive"): ["Keep it up!", "Would recommend Telko Nord."],
    ("en", "neutral"): ["We'll see.", "Fine overall."],
}
THEMES = ["sales_competence", "sales_individuality", "sales_friendliness", "quote_speed", "product_function",
          "product_lifetime", "product_quality", "service_reachability", "service_competence",
          "service_individuality", "response_time", "invoice", "provisioning", "hotline_waiting", "outage", "price"]
OTHER_LANG_THEMES = ["invoice", "outage", "hotline_waiting", "price", "product_function", "sales_friendliness"]
# theme weights of the first theme of a comment by NPS group (detractor, passive, promoter)
THEME_WEIGHTS = {
    "sales_competence": (0.02, 0.05, 0.08), "sales_individuality": (0.01, 0.03, 0.04),
    "sales_friendliness": (0.02, 0.06, 0.12), "quote_speed": (0.01, 0.04, 0.04),
    "product_function": (0.08, 0.12, 0.15), "product_lifetime": (0.02, 0.03, 0.02),
    "product_quality": (0.03, 0.06, 0.10), "service_reachability": (0.05, 0.05, 0.06),
    "service_competence": (0.05, 0.06, 0.10), "service_individuality": (0.03, 0.04, 0.03),
    "response_time": (0.06, 0.06, 0.06), "invoice": (0.30, 0.10, 0.03), "provisioning": (0.07, 0.07, 0.06),
    "hotline_waiting": (0.10, 0.08, 0.02), "outage": (0.05, 0.05, 0.02), "price": (0.10, 0.10, 0.10),
}


def _expand(template: str) -> list[str]:
    """'A [x|y] B' -> ['A x B', 'A y B']."""
    parts = re.split(r"\[([^\]]*)\]", template)
    choices = [[s] if i % 2 == 0 else s.split("|") for i, s in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def sentence_variants() -> dict[tuple[str, str, str], list[str]]:
    """All verbatim sentences per (theme, language, sentiment), alternatives expanded."""
    return {key: [v for t in templates for v in _expand(t)] for key, templates in SENTENCES.items()}


SIGNATURES = {"de": [("Gruß ", ", Kundennummer ", ""), ("Viele Grüße, ", " (Kd.-Nr. ", ")"), ("MfG ", ", Kundennr. ", "")],
              "en": [("Regards, ", " (", ")"), ("Sincerely, ", ", customer number ", ""), ("Cheers, ", " - ", "")]}
