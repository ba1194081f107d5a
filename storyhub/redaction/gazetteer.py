"""Word lists for finding personal details offline: given names, UK places, and the
capitalised words a probation story uses that are not names (kept out of suggestions).

The lists are deliberately common-case: a reporter confirms every suggestion, and a
deployment can add its own local names and places (REDACTION_EXTRA_NAMES / _PLACES).
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(word.lower() for word in text.split())


FIRST_NAMES = _words("""
aaron abdul abi abigail adam adrian ahmed aidan aiden alan albert alex alexander alfie ali
alice alison amanda amber amelia amir amy andrea andrew andy angela anna anne annie anthony
archie arthur ashley aaliyah barbara barry ben benjamin beth bethany bill billy bob bobby
brandon brian bridget callum cameron carl carla carol caroline carly catherine charlie
charlotte chelsea chloe chris christine christopher claire connor craig daisy dale damian
dan daniel danielle danny darren dave david dawn dean debbie deborah declan dennis derek
diane dominic donna dylan ed eddie edward eileen elaine eleanor elizabeth ella ellie emily
emma eric erin ethan evie faisal fatima finley fiona frank freddie freya gary gavin gemma
geoff george georgia gerry gillian glen gordon grace graham grant hannah harley harriet harry
harvey hassan hayley heather helen henry holly ian imran isaac isabel isabella isla ivan
jack jackie jacob jade jake james jamie jan jane janet jason jay jayden jean jenny jeremy
jess jessica jim jimmy jo joan joanne joe joel john johnny jon jonathan jordan joseph josh
joshua joy julie june justin karen kate katie kayleigh keith kelly kerry kevin kieran kim
kirsty kyle lauren laura lee leah leon lewis liam lily linda lisa logan louise lucy luke
lydia lynn maddie malcolm marcus margaret maria marie mark martin mary matt matthew megan
melanie mia michael michelle mick mike mohammed mohammad muhammad molly natalie nathan neil
nicola nicole nigel noah oliver olivia oscar owen paige pam patrick paul paula pauline peter
phil philip phoebe poppy rachel raj rebecca reece rhys richard rick rob robert robbie robin
roger ronnie rosie ross ruby russell ruth ryan sadie sally sam samantha samuel sandra sara
sarah scott sean shane shannon sharon shaun sheila simon sophie stacey stephen steve steven
stuart sue susan tanya terry theo thomas tim tina toby tom tommy tony tracey tracy tyler
usman vicky victoria wayne wendy william yasmin yusuf zac zak zara zoe
""")

# Towns and cities, prisons' usual names, and areas a story from England and Wales names.
PLACES = _words("""
aberdeen barnsley basildon bath bedford belfast birmingham blackburn blackpool bolton
bournemouth bradford brighton bristol burnley bury cambridge canterbury cardiff carlisle
chelmsford cheltenham chester chesterfield colchester coventry crawley croydon darlington
derby doncaster dover dudley durham eastbourne edinburgh exeter gateshead glasgow gloucester
grimsby guildford halifax harrogate hartlepool hastings huddersfield hull ipswich leeds
leicester lincoln liverpool london luton maidstone manchester middlesbrough milton newcastle
newport northampton norwich nottingham oldham oxford peterborough plymouth portsmouth preston
reading rochdale rotherham salford scunthorpe sheffield shrewsbury slough southampton
southend stockport stoke sunderland swansea swindon telford wakefield walsall warrington
watford wigan wolverhampton worcester york brixton hackney lambeth lewisham peckham tottenham
wandsworth pentonville belmarsh wormwood scrubs strangeways durham holloway
""")

# Capitalised words a story says that are not personal details.
NOT_PERSONAL = _words("""
i i'm i've i'll i'd ok okay god christmas easter ramadan eid monday tuesday wednesday
thursday friday saturday sunday january february march april may june july august september
october november december probation prison service court crown magistrates police nhs gp
a&e universal credit jobcentre dwp council housing officer mentor mentors hmp hmpps hostel
approved premises aa na english british welsh scottish irish polish muslim christian mum
dad mam nan gran grandad mister miss mrs mr ms dr covid facebook whatsapp google national
insurance citizens advice samaritans shelter mind crisis
curfew tenancy caseload caseloads keyworker caseworker methadone subutex buprenorphine naloxone
detox rehab bedsit postcode safeguarding resettlement reoffending desistance mentoring
counselling counsellor crc nps
""")

# Words that end a street name, and titles that come before a surname.
STREET_WORDS = _words("""
road street lane avenue close drive way crescent place court gardens terrace grove hill
square parade row walk mews rise estate
""")
TITLES = _words("mr mrs ms miss dr mister")

# Given names and places that are also everyday words: only suggested after a cue ("my name
# is", "my officer", "moved to"), or for a place, capitalised in the middle of a sentence.
AMBIGUOUS = _words("""
will mark may bill grace joy dawn rose hope faith jack rob sue pat june frank dean drew miles
ray amber holly ruby sandy summer heather jay lee glen grant jan reading bath hull bury
dover york mind crisis shelter poppy daisy robin ivy iris sky
""")

# The commonest English words, which never begin or continue a name in text without capitals.
FUNCTION_WORDS = _words("""
a about after again all also am an and any are as at back be because been before being but
by came can come could did do does done down each even ever every for from get go going got
had has have he her here him his how i if in into is it its just know like made make me
more most much my never no not now of off on once one only or other our out over really
rang said same saw say see she should since so some still such than that the their them
then there these they this those through to too up us very was we well went were what when
where which while who why will with would you your yes yeah um uh er okay ok right sort kind
told asked helped help called named name week month year today day night morning every
again always officer mate friend mum dad sister brother son daughter wife husband partner
group appointment appointments probation prison hostel court job work house flat room
first second third last next new old big little good best nice safe quiet
""")

# Phrases after which the next word is a place.
PLACE_CUES = (("moved", "to"), ("born", "in"), ("grew", "up", "in"), ("lived", "in"),
              ("live", "in"), ("living", "in"), ("hostel", "in"), ("flat", "in"),
              ("prison", "in"), ("hmp",), ("back", "to"))
